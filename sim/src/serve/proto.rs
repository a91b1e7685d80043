//! kubectl's typed commands (`kubectl create namespace`, `kubectl create configmap`) send
//! their object as Kubernetes protobuf. This decodes that envelope and the few messages those
//! commands send (Namespace, ConfigMap, with ObjectMeta's name, generateName, namespace,
//! labels, annotations and finalizers) into the JSON the rest of the server works with. Any
//! other protobuf body is refused with 415.

use serde_json::{json, Map, Value};

const MAGIC: &[u8] = b"k8s\0";

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.pos += 8;
                Field::Fixed
            }
            2 => {
                let len = self.varint()? as usize;
                let end = self.pos.checked_add(len).ok_or("bad length")?;
                let bytes = self.buf.get(self.pos..end).ok_or("truncated field")?;
                self.pos = end;
                Field::Bytes(bytes)
            }
            5 => {
                self.pos += 4;
                Field::Fixed
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        if self.pos > self.buf.len() {
            return Err("truncated field".into());
        }
        Ok(Some((tag >> 3, field)))
    }
}

fn string(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a string is not UTF-8".to_string())
}

/// A `map<string, string>` entry.
fn map_entry(b: &[u8]) -> Result<(String, Value), String> {
    let mut r = Reader::new(b);
    let (mut k, mut v) = (String::new(), String::new());
    while let Some((n, f)) = r.next()? {
        if let Field::Bytes(b) = f {
            match n {
                1 => k = string(b)?,
                2 => v = string(b)?,
                _ => {}
            }
        }
    }
    Ok((k, json!(v)))
}

fn object_meta(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut m = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (Map::new(), Map::new(), Vec::new());
    while let Some((n, f)) = r.next()? {
        let Field::Bytes(b) = f else { continue };
        match n {
            1 => {
                m.insert("name".into(), json!(string(b)?));
            }
            2 => {
                m.insert("generateName".into(), json!(string(b)?));
            }
            3 => {
                m.insert("namespace".into(), json!(string(b)?));
            }
            11 => {
                let (k, v) = map_entry(b)?;
                labels.insert(k, v);
            }
            12 => {
                let (k, v) = map_entry(b)?;
                annotations.insert(k, v);
            }
            14 => finalizers.push(json!(string(b)?)),
            _ => {}
        }
    }
    m.retain(|_, v| v.as_str().map(|s| !s.is_empty()).unwrap_or(true));
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(m))
}

fn namespace(b: &[u8]) -> Result<Value, String> {
    let mut obj = json!({"apiVersion": "v1", "kind": "Namespace"});
    let mut r = Reader::new(b);
    while let Some((n, f)) = r.next()? {
        let Field::Bytes(b) = f else { continue };
        match n {
            1 => obj["metadata"] = object_meta(b)?,
            2 => {
                let mut spec = Reader::new(b);
                let mut finalizers = Vec::new();
                while let Some((n, f)) = spec.next()? {
                    if let (1, Field::Bytes(b)) = (n, f) {
                        finalizers.push(json!(string(b)?));
                    }
                }
                if !finalizers.is_empty() {
                    obj["spec"] = json!({"finalizers": finalizers});
                }
            }
            _ => {}
        }
    }
    Ok(obj)
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn config_map(b: &[u8]) -> Result<Value, String> {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap"});
    let (mut data, mut binary) = (Map::new(), Map::new());
    let mut r = Reader::new(b);
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(b)) => obj["metadata"] = object_meta(b)?,
            (2, Field::Bytes(b)) => {
                let (k, v) = map_entry(b)?;
                data.insert(k, v);
            }
            (3, Field::Bytes(b)) => {
                let mut e = Reader::new(b);
                let (mut k, mut v) = (String::new(), Vec::new());
                while let Some((n, f)) = e.next()? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => k = string(b)?,
                        (2, Field::Bytes(b)) => v = b.to_vec(),
                        _ => {}
                    }
                }
                binary.insert(k, json!(base64(&v)));
            }
            (4, Field::Varint(v)) => obj["immutable"] = json!(v != 0),
            _ => {}
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !binary.is_empty() {
        obj["binaryData"] = Value::Object(binary);
    }
    Ok(obj)
}

/// The JSON of a protobuf request body, for the kinds kubectl's typed commands send here.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("not a Kubernetes protobuf envelope")?;
    let mut r = Reader::new(rest);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(b)) => {
                let mut t = Reader::new(b);
                while let Some((n, f)) = t.next()? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => api_version = string(b)?,
                        (2, Field::Bytes(b)) => kind = string(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => namespace(raw),
        ("v1", "ConfigMap") => config_map(raw),
        _ => Err(format!(
            "{kind} ({api_version}) in protobuf is not understood here; send JSON (for example `kubectl apply -f`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_kubectl_create_namespace() {
        // What kubectl 1.32 sends for `kubectl create namespace foo`.
        let body: &[u8] = &[
            0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x4e, 0x61,
            0x6d, 0x65, 0x73, 0x70, 0x61, 0x63, 0x65, 0x12, 0x1b, 0x0a, 0x13, 0x0a, 0x03, 0x66,
            0x6f, 0x6f, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00,
            0x42, 0x00, 0x12, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
        ];
        assert_eq!(
            decode(body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}})
        );
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
