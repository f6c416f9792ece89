//! Session parameters: their defaults, `SET` and `SHOW` (what PostgreSQL
//! drivers and psql send at startup, and the timeouts a session may set).

use super::*;

/// Session parameters and their defaults (what `SHOW` reports).
pub(super) fn default_settings() -> std::collections::BTreeMap<String, String> {
    [
        ("application_name", ""),
        ("client_encoding", "UTF8"),
        ("client_min_messages", "notice"),
        ("datestyle", "ISO, MDY"),
        ("default_transaction_isolation", "read committed"),
        ("default_transaction_read_only", "off"),
        ("extra_float_digits", "1"),
        ("idle_in_transaction_session_timeout", "0"),
        ("intervalstyle", "postgres"),
        ("lock_timeout", "0"),
        ("search_path", "\"$user\", public"),
        ("server_encoding", "UTF8"),
        (
            "server_version",
            concat!("15.0 (tiers ", env!("CARGO_PKG_VERSION"), ")"),
        ),
        ("standard_conforming_strings", "on"),
        ("statement_timeout", "0"),
        ("timezone", "UTC"),
        ("transaction isolation level", "read committed"),
        ("transaction_isolation", "read committed"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub(super) fn unknown_setting(name: &str) -> SqlError {
    SqlError::new(
        "42704",
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

impl Session {
    pub(super) fn set(&mut self, name: &str, value: &str) -> Result<QueryResult> {
        let name = name.to_ascii_lowercase();
        let fixed = |wanted: &[&str]| -> Result<()> {
            if wanted.iter().any(|w| w.eq_ignore_ascii_case(value)) {
                Ok(())
            } else {
                Err(SqlError::new(
                    "22023",
                    format!(
                        "tiers supports only {} for {name}, not \"{value}\"",
                        wanted[0]
                    ),
                ))
            }
        };
        match name.as_str() {
            "client_encoding" => fixed(&["UTF8", "UTF-8", "UNICODE", "DEFAULT"])?,
            "standard_conforming_strings" => fixed(&["on", "true", "DEFAULT"])?,
            "timezone" => fixed(&["UTC", "Etc/UTC", "GMT", "Z", "DEFAULT"])?,
            "statement_timeout" | "idle_in_transaction_session_timeout" | "lock_timeout"
                if !value.eq_ignore_ascii_case("default")
                    && crate::limits::parse_duration(value).is_none() =>
            {
                return Err(SqlError::new(
                    "22023",
                    format!(
                        "invalid value for parameter \"{name}\": \"{value}\" (use milliseconds, or a unit: ms, s, min, h)"
                    ),
                ));
            }
            "default_transaction_isolation" => fixed(&[
                "read committed",
                "repeatable read",
                "read uncommitted",
                "DEFAULT",
            ])?,
            "default_transaction_read_only" => fixed(&["off", "on", "true", "false", "DEFAULT"])?,
            "server_version"
            | "server_encoding"
            | "transaction isolation level"
            | "transaction_isolation"
            | "transaction_read_only"
            | "in_hot_standby" => {
                return Err(SqlError::new(
                    "55P02",
                    format!("parameter \"{name}\" cannot be changed"),
                ));
            }
            _ if !self.settings.contains_key(&name) => return Err(unknown_setting(&name)),
            _ => {}
        }
        let value = if value.eq_ignore_ascii_case("default") {
            default_settings().remove(&name).unwrap_or_default()
        } else {
            value.to_string()
        };
        self.settings.insert(name, value);
        if self.txn.is_none() {
            self.read_committed = self.default_read_committed();
            self.read_only = self
                .settings
                .get("default_transaction_read_only")
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "on" | "true"));
        }
        Ok(QueryResult::command("SET"))
    }

    pub(super) fn show(&self, name: &str) -> Result<QueryResult> {
        let name = name.to_ascii_lowercase();
        let current = if self.read_committed {
            "read committed".to_string()
        } else {
            "repeatable read".to_string()
        };
        // A cluster follower is a hot standby: every transaction on it is
        // read-only (what `target_session_attrs=read-write` asks about).
        let standby = !self.db.engine.accepts_writes();
        let on_off = |on: bool| if on { "on" } else { "off" }.to_string();
        let read_only = on_off(self.read_only || standby);
        let hot_standby = on_off(standby);
        let value = match name.as_str() {
            "transaction isolation level" | "transaction_isolation" => &current,
            "transaction_read_only" => &read_only,
            "in_hot_standby" => &hot_standby,
            _ => self
                .settings
                .get(&name)
                .ok_or_else(|| unknown_setting(&name))?,
        };
        Ok(QueryResult {
            columns: vec![Column {
                name: name.clone(),
                data_type: DataType::Text,
            }],
            rows: vec![vec![Value::Text(value.clone())]],
            tag: "SHOW".into(),
        })
    }
}
