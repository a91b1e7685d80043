//! Sizes and quantities as users write them: Flink memory sizes (`2048m`, `2g`, `1024 mb`,
//! bytes) and Kubernetes quantities (`2Gi`, `512Mi`, `500m` cpu, `1.5`).

/// Bytes of a memory size, in either the Flink or the Kubernetes form.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a memory size (e.g. 2048m, 2g, 2Gi)"))?;
    let unit = unit.trim();
    let factor: f64 = match unit {
        "" | "b" | "bytes" => 1.0,
        // Kubernetes binary and decimal suffixes.
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        // Flink's MemorySize units (case-insensitive, binary).
        u => match u.to_ascii_lowercase().as_str() {
            "k" | "kb" | "kibibytes" => 1024.0,
            "m" | "mb" | "mebibytes" => 1024f64.powi(2),
            "g" | "gb" | "gibibytes" => 1024f64.powi(3),
            "t" | "tb" | "tebibytes" => 1024f64.powi(4),
            _ => return Err(format!("'{text}' has an unknown memory unit '{unit}'")),
        },
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes <= 0.0 {
        return Err(format!("'{text}' must be a positive memory size"));
    }
    Ok(bytes as u64)
}

/// A Kubernetes quantity as a number in base units (cores for cpu, bytes for memory).
pub fn parse_quantity(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty quantity".into());
    }
    let split = t
        .find(|c: char| {
            !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-' || c == 'e' || c == 'E')
        })
        .unwrap_or(t.len());
    // `1e3` is an exponent, but `1E` alone is not a quantity: let the suffix decide.
    let (number, suffix) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a Kubernetes quantity"))?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            return Err(format!(
                "'{text}' has an unknown quantity suffix '{suffix}'"
            ))
        }
    };
    Ok(value * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_and_kubernetes_memory_forms() {
        assert_eq!(parse_memory("2048m").unwrap(), 2048 * 1024 * 1024);
        assert_eq!(parse_memory("2g").unwrap(), 2 * 1024 * 1024 * 1024);
        assert_eq!(parse_memory("1024 mb").unwrap(), 1024 * 1024 * 1024);
        assert_eq!(parse_memory("2Gi").unwrap(), 2 * 1024 * 1024 * 1024);
        assert_eq!(parse_memory("1G").unwrap(), 1_000_000_000);
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("2 parsecs").is_err());
        assert!(parse_memory("0m").is_err());
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m").unwrap(), 0.5);
        assert_eq!(parse_quantity("1").unwrap(), 1.0);
        assert_eq!(parse_quantity("2Gi").unwrap(), 2.0 * 1024f64.powi(3));
        assert!(parse_quantity("1 cpu").is_err());
    }
}
