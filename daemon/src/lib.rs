//! tapis-agent: the daemon library.
