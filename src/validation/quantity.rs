//! Sizes and quantities as users write them.
//!
//! * [`parse_memory`]: a memory size the way upstream reads `resource.memory` and
//!   `resources.*.memory` — first as a Flink `MemorySize` (`2048m`, `2g`, `1024mb`, `1 gb`,
//!   `4096`, `512 bytes`; binary units, case-insensitive), and when that fails as a Kubernetes
//!   quantity (`2Gi`, `512Mi`, `1.5G`, `1e9`).
//! * [`parse_quantity`]: a Kubernetes quantity as a number of base units (cores for cpu,
//!   bytes for storage): `500m`, `1`, `2.5`, `2Gi`, `1k`, `1e3`.

const KIB: f64 = 1024.0;

/// Bytes of a memory size, in the Flink or the Kubernetes form. Zero and negative sizes are
/// refused: every memory size the operator uses must be positive.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty memory size".to_string());
    }
    let bytes = match flink_memory(t) {
        Some(result) => result?,
        None => {
            let value = parse_quantity(&kubernetes_memory_form(t)).map_err(|_| {
                format!("'{text}' is not a memory size (e.g. 2048m, 2g, 1024mb, 2Gi)")
            })?;
            if value <= 0.0 {
                0
            } else if value >= u64::MAX as f64 {
                return Err(format!("'{text}' is too large a memory size"));
            } else {
                value as u64
            }
        }
    };
    if bytes == 0 {
        return Err(format!("'{text}' must be a positive memory size"));
    }
    Ok(bytes)
}

/// Flink's `MemorySize.parse`: an integer, optional blanks, an optional unit. `None` when the
/// text is not of that form (so the Kubernetes form gets its turn).
fn flink_memory(t: &str) -> Option<Result<u64, String>> {
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return None;
    }
    let (number, unit) = t.split_at(digits);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gibibytes" => 1 << 30,
        "t" | "tb" | "tebibytes" => 1 << 40,
        _ => return None,
    };
    Some(
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(factor))
            .ok_or_else(|| format!("'{t}' is too large a memory size")),
    )
}

/// How upstream turns a memory string into a Kubernetes quantity: blanks removed, upper case,
/// a trailing `B` dropped, and a binary suffix written `Ki`/`Mi`/`Gi`.
fn kubernetes_memory_form(t: &str) -> String {
    let mut q: String = t
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if q.ends_with('B') {
        q.pop();
    }
    if q.ends_with('I') {
        q.pop();
        q.push('i');
    }
    q
}

/// A Kubernetes quantity (`<sign><number><suffix>`) in base units.
pub fn parse_quantity(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty quantity".to_string());
    }
    let invalid = || format!("'{text}' is not a Kubernetes quantity (e.g. 500m, 2, 2Gi, 1G)");
    let (negative, unsigned) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(end);
    if !number.bytes().any(|b| b.is_ascii_digit()) || number.matches('.').count() > 1 {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => KIB,
        "Mi" => KIB.powi(2),
        "Gi" => KIB.powi(3),
        "Ti" => KIB.powi(4),
        "Pi" => KIB.powi(5),
        "Ei" => KIB.powi(6),
        s if s.starts_with(['e', 'E']) => {
            let exponent: i32 = s[1..].parse().map_err(|_| invalid())?;
            10f64.powi(exponent)
        }
        _ => return Err(invalid()),
    };
    let v = value * factor;
    if !v.is_finite() {
        return Err(format!("'{text}' is too large a quantity"));
    }
    Ok(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn flink_memory_sizes_are_binary_and_case_insensitive() {
        assert_eq!(parse_memory("2048m").unwrap(), 2048 * MIB);
        assert_eq!(parse_memory("2g").unwrap(), 2 * GIB);
        assert_eq!(parse_memory("2G").unwrap(), 2 * GIB);
        assert_eq!(parse_memory("1024mb").unwrap(), GIB);
        assert_eq!(parse_memory("1024 mb").unwrap(), GIB);
        assert_eq!(parse_memory("1gb").unwrap(), GIB);
        assert_eq!(parse_memory("1 gibibytes").unwrap(), GIB);
        assert_eq!(parse_memory("64k").unwrap(), 64 * 1024);
        assert_eq!(parse_memory("1t").unwrap(), 1 << 40);
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert_eq!(parse_memory("512 bytes").unwrap(), 512);
        assert_eq!(parse_memory(" 1g ").unwrap(), GIB);
    }

    #[test]
    fn kubernetes_memory_quantities() {
        assert_eq!(parse_memory("2Gi").unwrap(), 2 * GIB);
        assert_eq!(parse_memory("512Mi").unwrap(), 512 * MIB);
        assert_eq!(parse_memory("512MiB").unwrap(), 512 * MIB);
        assert_eq!(parse_memory("1.5Gi").unwrap(), 3 * GIB / 2);
        assert_eq!(parse_memory("1.5g").unwrap(), 1_500_000_000);
        assert_eq!(parse_memory("1e9").unwrap(), 1_000_000_000);
        assert_eq!(parse_memory("64Ki").unwrap(), 64 * 1024);
    }

    #[test]
    fn bad_memory_sizes_are_refused_with_the_text() {
        for bad in ["lots", "2 parsecs", "", "g", "1..5g", "Gi", "2GGi"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert!(parse_memory("lots").unwrap_err().contains("'lots'"));
        for not_positive in ["0", "0m", "0Gi", "-1g", "-512Mi"] {
            let e = parse_memory(not_positive).unwrap_err();
            assert!(e.contains("positive"), "{not_positive}: {e}");
        }
        assert!(parse_memory("99999999999999999999t").is_err());
        assert!(parse_memory("99999999999Ei").is_err());
    }

    #[test]
    fn quantities_in_base_units() {
        assert_eq!(parse_quantity("500m").unwrap(), 0.5);
        assert_eq!(parse_quantity("1").unwrap(), 1.0);
        assert_eq!(parse_quantity("2.5").unwrap(), 2.5);
        assert_eq!(parse_quantity(".5").unwrap(), 0.5);
        assert_eq!(parse_quantity("+2").unwrap(), 2.0);
        assert_eq!(parse_quantity("-2").unwrap(), -2.0);
        assert_eq!(parse_quantity("2Gi").unwrap(), 2.0 * KIB.powi(3));
        assert_eq!(parse_quantity("1k").unwrap(), 1000.0);
        assert_eq!(parse_quantity("1M").unwrap(), 1e6);
        assert_eq!(parse_quantity("1E").unwrap(), 1e18);
        assert_eq!(parse_quantity("1e3").unwrap(), 1000.0);
        assert_eq!(parse_quantity("1E-3").unwrap(), 0.001);
        assert!((parse_quantity("100n").unwrap() - 1e-7).abs() < 1e-15);
    }

    #[test]
    fn bad_quantities() {
        for bad in [
            "", "1 cpu", "cpu", "1.2.3", "1KB", "1mi", "--1", "1e", "1ex", ".", "1e999",
        ] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
    }
}
