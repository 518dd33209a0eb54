//! Every `tapis-cred --json` document, produced by the real binary against an
//! agent and the fake Tapis, matches docs/tapis-cred.schema.json.
//!
//! The schema is derived from the client's output types
//! (client/src/render/schema.rs, which also checks the committed file is
//! current). It uses a small subset of JSON Schema (type, const, enum,
//! properties, required, additionalProperties: false, items, oneOf, anyOf,
//! local $ref, minimum, maximum; format is an annotation, as draft 2020-12
//! has it by default), checked by the validator below. A full validator crate
//! would pull dozens of crates into every CI build for that subset; the test
//! also fails if the schema ever uses a keyword this validator does not know,
//! so nothing is silently ignored.

use serde_json::Value;
use std::path::Path;
use tapis_agent_tests::harness::{PASSWORD, TestAgent, USER, cred_cmd};

const SCHEMA: &str = include_str!("../../../docs/tapis-cred.schema.json");

const KNOWN: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "const",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "oneOf",
    "anyOf",
    "format",
    "minimum",
    "maximum",
];

/// Fails on a keyword the validator would ignore.
fn check_keywords(schema: &Value, at: &str) {
    let Value::Object(map) = schema else { return };
    for (k, v) in map {
        assert!(
            KNOWN.contains(&k.as_str()),
            "unsupported keyword {k} at {at}"
        );
        match k.as_str() {
            "properties" | "$defs" => {
                for (name, sub) in v.as_object().expect("object") {
                    check_keywords(sub, &format!("{at}/{k}/{name}"));
                }
            }
            "items" => check_keywords(v, &format!("{at}/items")),
            "oneOf" | "anyOf" => {
                for (i, sub) in v.as_array().expect("array").iter().enumerate() {
                    check_keywords(sub, &format!("{at}/{k}/{i}"));
                }
            }
            "additionalProperties" => assert_eq!(v, &Value::Bool(false), "at {at}"),
            _ => {}
        }
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("unknown type {other}"),
    }
}

/// Errors of `v` against `schema` (empty: valid).
fn validate(root: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local $ref");
        return validate(root, &root["$defs"][name], v, at);
    }
    if let Some(t) = schema.get("type") {
        let ok = match t {
            Value::String(t) => type_matches(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_matches(t.as_str().unwrap(), v)),
            _ => panic!("bad type at {at}"),
        };
        if !ok {
            errs.push(format!("{at}: {v} is not of type {t}"));
            return errs;
        }
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        errs.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errs.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64())
        && n < min
    {
        errs.push(format!("{at}: {n} < {min}"));
    }
    if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_f64), v.as_f64())
        && n > max
    {
        errs.push(format!("{at}: {n} > {max}"));
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(req.as_str().unwrap()) {
                errs.push(format!("{at}: missing {req}"));
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(sub) => errs.extend(validate(root, sub, val, &format!("{at}.{k}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errs.push(format!("{at}: undocumented field {k}"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            errs.extend(validate(root, items, item, &format!("{at}[{i}]")));
        }
    }
    if let Some(one_of) = schema.get("oneOf").and_then(Value::as_array) {
        let results: Vec<Vec<String>> = one_of.iter().map(|s| validate(root, s, v, at)).collect();
        let matched = results.iter().filter(|r| r.is_empty()).count();
        if matched != 1 {
            errs.push(format!(
                "{at}: matches {matched} of oneOf (want 1); closest: {:?}",
                results.iter().min_by_key(|r| r.len())
            ));
        }
    }
    if let Some(any_of) = schema.get("anyOf").and_then(Value::as_array) {
        let results: Vec<Vec<String>> = any_of.iter().map(|s| validate(root, s, v, at)).collect();
        if !results.iter().any(Vec::is_empty) {
            errs.push(format!(
                "{at}: matches none of anyOf; closest: {:?}",
                results.iter().min_by_key(|r| r.len())
            ));
        }
    }
    errs
}

fn schema() -> Value {
    let s: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    check_keywords(&s, "#");
    s
}

/// Runs `tapis-cred --json ARGS` and validates its one document; returns it.
fn run_and_validate(schema: &Value, socket: &Path, args: &[&str], stdin: Option<&str>) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = cred_cmd(socket, &all, stdin);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().count(),
        1,
        "{args:?}: one line of JSON: {text}"
    );
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let errs = validate(schema, schema, &doc, "$");
    assert!(errs.is_empty(), "{args:?}: {doc}\n{errs:#?}");
    assert_eq!(
        doc["exit_code"].as_i64(),
        out.status.code().map(i64::from),
        "{args:?}: exit_code is the exit status"
    );
    doc
}

#[test]
fn validator_rejects_what_it_should() {
    let s = schema();
    let ok = serde_json::json!({"command": "logout", "ok": true, "exit_code": 0});
    assert!(validate(&s, &s, &ok, "$").is_empty());
    let extra = serde_json::json!({"command": "logout", "ok": true, "exit_code": 0, "x": 1});
    assert!(!validate(&s, &s, &extra, "$").is_empty());
    let wrong = serde_json::json!({"command": "token", "ok": true, "exit_code": 0});
    assert!(!validate(&s, &s, &wrong, "$").is_empty());
    // anyOf: an error object or null, nothing else.
    let system = |error| {
        serde_json::json!({"command": "check", "ok": true, "exit_code": 0, "systems": [
            {"system": "ls6", "user": "u", "state": "present", "cached": false, "error": error}]})
    };
    assert!(validate(&s, &s, &system(Value::Null), "$").is_empty());
    assert!(!validate(&s, &s, &system(serde_json::json!("boom")), "$").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_matches_the_schema() {
    let agent = TestAgent::start().await;
    let socket = agent.socket.clone();
    let export = agent.dir.path().join("tokens.json");
    let man_dir = agent.dir.path().join("man");
    let missing = agent.dir.path().join("nobody/agent.sock");
    let commands = tokio::task::spawn_blocking(move || {
        let s = schema();
        let run = |args: &[&str]| run_and_validate(&s, &socket, args, None);
        let mut seen = Vec::new();
        seen.push(run(&["status"]));
        seen.push(run(&["token"]));
        let login = ["login", "--username", USER, "--password-stdin"];
        seen.push(run_and_validate(&s, &socket, &login, Some(PASSWORD)));
        seen.push(run(&["status"]));
        seen.push(run(&["establish", "stampede3", "ls6", "nosuch"]));
        seen.push(run(&["check", "stampede3"]));
        seen.push(run(&["revoke", "ls6"]));
        seen.push(run(&["token", "--min-valid", "30"]));
        seen.push(run(&["export-token-file", export.to_str().unwrap()]));
        seen.push(run(&["doctor"]));
        seen.push(run(&["completions", "fish"]));
        seen.push(run(&["man"]));
        seen.push(run(&["man", man_dir.to_str().unwrap()]));
        seen.push(run(&["establish"]));
        seen.push(run(&["logout"]));
        seen.push(run_and_validate(&s, &missing, &["status"], None));
        seen.iter()
            .map(|d| d["command"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    })
    .await
    .expect("join");
    for command in [
        "status",
        "token",
        "login",
        "establish",
        "check",
        "revoke",
        "export-token-file",
        "doctor",
        "completions",
        "man",
        "logout",
    ] {
        assert!(
            commands.iter().any(|c| c == command),
            "{command} not covered"
        );
    }
    agent.shutdown().await;
}
