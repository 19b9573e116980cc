//! The effective configuration as TOML (`check-config`). Rendered from the redacted JSON, so
//! it shows exactly what `/configz` shows and needs no code per setting. The effective config
//! has only tables, scalars and arrays of scalars.

pub(super) fn effective_toml(redacted: &serde_json::Value) -> String {
    let mut out = String::new();
    if let serde_json::Value::Object(map) = redacted {
        emit_toml_table(&mut out, "", map);
    }
    out
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        serde_json::Value::String(k.to_string()).to_string()
    }
}

fn toml_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
            )
        }
        serde_json::Value::Number(n) if n.is_f64() => {
            let s = n.to_string();
            if s.contains(['.', 'e', 'E']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        // Strings: JSON escapes are valid TOML basic-string escapes.
        other => other.to_string(),
    }
}

fn emit_toml_table(out: &mut String, path: &str, map: &serde_json::Map<String, serde_json::Value>) {
    for (k, v) in map {
        match v {
            serde_json::Value::Object(_) => {}
            serde_json::Value::Null => out.push_str(&format!("# {} is unset\n", toml_key(k))),
            other => out.push_str(&format!("{} = {}\n", toml_key(k), toml_value(other))),
        }
    }
    for (k, v) in map {
        if let serde_json::Value::Object(sub) = v {
            let sub_path = if path.is_empty() {
                toml_key(k)
            } else {
                format!("{path}.{}", toml_key(k))
            };
            out.push_str(&format!("\n[{sub_path}]\n"));
            emit_toml_table(out, &sub_path, sub);
        }
    }
}
