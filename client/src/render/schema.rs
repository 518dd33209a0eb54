//! The JSON Schema of every `--json` document, derived from the types that
//! are serialized: docs/tapis-cred.schema.json is this module's output.
//!
//! Each document is its body type (its fields and their doc comments) plus
//! the envelope every document starts with (`command`, `ok`, `exit_code`),
//! whose allowed values are listed here per document. The integration test
//! `ux_json_schema` runs every command and validates its output against the
//! file, so a type, the table below and the program cannot drift apart.
//!
//! After changing an output type, regenerate the file:
//! `TAPIS_WRITE_SCHEMA=1 cargo test -p tapis-cred --lib render::schema`.

use super::Failed;
use super::account::{Exported, LoggedIn, LoggedOut, Token};
use super::status::Status;
use super::systems::Systems;
use crate::completions::{Pages, Script};
use crate::doctor::Report;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};
use tapis_agent_proto::{CredState, ErrorKind};

/// How the envelope of a document can end.
#[derive(Clone, Copy)]
enum Outcome {
    /// `ok: true`, exit code 0.
    Succeeds,
    /// `ok: false`, an error's exit code.
    Fails,
    /// Either: per-system or per-check results.
    Either,
}

/// The `$defs` name of a document, the commands that print it (none: any
/// command can), how it ends, and its body's schema.
type Entry = (&'static str, &'static [&'static str], Outcome, Schema);

fn documents(generator: &mut SchemaGenerator) -> Vec<Entry> {
    use Outcome::*;
    let mut body = |f: fn(&mut SchemaGenerator) -> Schema| f(generator);
    vec![
        ("failure", &[], Fails, body(Failed::json_schema)),
        (
            "systems",
            &["establish", "revoke", "check"],
            Either,
            body(Systems::json_schema),
        ),
        ("token", &["token"], Succeeds, body(Token::json_schema)),
        ("login", &["login"], Succeeds, body(LoggedIn::json_schema)),
        (
            "logout",
            &["logout"],
            Succeeds,
            body(LoggedOut::json_schema),
        ),
        ("status", &["status"], Succeeds, body(Status::json_schema)),
        (
            "export_token_file",
            &["export-token-file"],
            Succeeds,
            body(Exported::json_schema),
        ),
        ("doctor", &["doctor"], Either, body(Report::json_schema)),
        (
            "completions",
            &["completions"],
            Succeeds,
            body(Script::json_schema),
        ),
        ("man", &["man"], Succeeds, body(Pages::json_schema)),
    ]
}

/// The highest exit code of an error.
fn max_code() -> u8 {
    ErrorKind::ALL
        .iter()
        .map(|k| k.exit_code())
        .max()
        .unwrap_or(1)
}

/// A body's schema with the envelope's fields in front.
fn document(commands: &[&str], outcome: Outcome, body: Schema) -> Value {
    let mut doc = body.to_value();
    let command = match commands {
        [] => json!({
            "type": "string",
            "description": "The subcommand, or `tapis-cred` when the command line named none."
        }),
        [one] => json!({ "const": one }),
        many => json!({ "enum": many }),
    };
    let max = max_code();
    let (ok, exit_code) = match outcome {
        Outcome::Succeeds => (json!({"const": true}), json!({"const": 0})),
        Outcome::Fails => (
            json!({"const": false}),
            json!({"type": "integer", "minimum": 1, "maximum": max}),
        ),
        Outcome::Either => (
            json!({"type": "boolean"}),
            json!({"type": "integer", "minimum": 0, "maximum": max}),
        ),
    };
    let obj = doc.as_object_mut().expect("a body is an object");
    let props = obj
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("properties");
    props.insert("command".into(), command);
    props.insert("ok".into(), ok);
    props.insert("exit_code".into(), exit_code);
    let mut required = vec![json!("command"), json!("ok"), json!("exit_code")];
    if let Some(Value::Array(more)) = obj.get("required") {
        required.extend(more.iter().cloned());
    }
    obj.insert("required".into(), Value::Array(required));
    doc
}

/// The whole schema, keys sorted.
pub(crate) fn schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let docs = documents(&mut generator);
    let mut defs = generator.take_definitions(true);
    let mut one_of = Vec::new();
    for (name, commands, outcome, body) in docs {
        defs.insert(name.into(), document(commands, outcome, body));
        one_of.push(json!({ "$ref": format!("#/$defs/{name}") }));
    }
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/tapis-agent/tapis-agent/blob/main/docs/tapis-cred.schema.json",
        "title": "tapis-cred --json output",
        "description": "With --json, every tapis-cred command prints exactly one JSON document on \
            stdout, matching exactly one of these shapes. Every document starts with command, ok \
            and exit_code (the process exit code). The schema is strict (no undocumented field) \
            so that the test suite catches any change to the output; later versions may add \
            fields, so consumers should ignore fields they do not know. Generated from the \
            output types (client/src/render/schema.rs).",
        "oneOf": one_of,
        "$defs": defs,
    });
    strict(&mut root);
    sorted(root)
}

/// No undocumented field: every object schema closes its properties. Doc
/// comments' line breaks become spaces.
fn strict(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.contains_key("properties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            if let Some(Value::String(text)) = map.get_mut("description") {
                *text = text.replace('\n', " ");
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// Keys in sorted order whatever serde_json's map keeps, so the file's text
/// does not depend on the build's features.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

// Fields printed as strings whose values have their home elsewhere.

/// An error's `kind`.
pub(crate) fn error_kind(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "enum": ErrorKind::ALL.map(ErrorKind::as_str) })
}

/// An error's `code`.
pub(crate) fn failure_code(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer", "minimum": 1, "maximum": max_code() })
}

/// A credential state.
pub(crate) fn cred_state(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "enum": CredState::ALL.map(CredState::as_str) })
}

/// A credential state, or null when the system failed.
pub(crate) fn cred_state_or_null(_: &mut SchemaGenerator) -> Schema {
    let mut states: Vec<Value> = CredState::ALL.map(|s| json!(s.as_str())).to_vec();
    states.push(Value::Null);
    json_schema!({ "enum": states })
}

/// How the agents sharing a state directory lock it (the agent's
/// `state::LockMethod`).
pub(crate) fn lock_method(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "enum": ["flock", "lockfile"] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/tapis-cred.schema.json")
    }

    #[test]
    fn the_committed_schema_is_the_derived_one() {
        let text = serde_json::to_string_pretty(&schema()).expect("JSON") + "\n";
        if std::env::var_os("TAPIS_WRITE_SCHEMA").is_some() {
            std::fs::write(path(), &text).expect("write the schema");
            return;
        }
        let committed = std::fs::read_to_string(path()).unwrap_or_default();
        assert!(
            committed == text,
            "docs/tapis-cred.schema.json is not the schema the output types give; \
             regenerate it with: TAPIS_WRITE_SCHEMA=1 cargo test -p tapis-cred --lib render::schema"
        );
    }

    #[test]
    fn every_document_is_closed_and_starts_with_the_envelope() {
        let s = schema();
        let defs = s["$defs"].as_object().expect("$defs");
        for one in s["oneOf"].as_array().expect("oneOf") {
            let name = one["$ref"].as_str().unwrap().trim_start_matches("#/$defs/");
            let doc = &defs[name];
            assert_eq!(doc["additionalProperties"], false, "{name}");
            let required = doc["required"].as_array().expect("required");
            assert_eq!(
                required[..3],
                [json!("command"), json!("ok"), json!("exit_code")]
            );
        }
    }
}
