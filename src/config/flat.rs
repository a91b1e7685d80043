//! A flat configuration (`key: value`, in key order) packed into one text.
//!
//! A configuration is read many times per reconcile and kept between them (with the spec it
//! belongs to). As a map of strings each key and value is an allocation of its own, and a
//! lookup follows a pointer per key it compares: with thousands of resources those keys are
//! seldom in cache. Packed, the keys of one configuration lie side by side in one text, and a
//! lookup is a binary search over one small array of offsets into it.

use std::collections::BTreeMap;

/// Keys and values back to back in `text`; `spans[i]` is entry i's key start, value start
/// (the key's end) and value end. Sorted by key, keys unique.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FlatConfig {
    text: String,
    spans: Vec<[u32; 3]>,
}

impl FlatConfig {
    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.position(key)?;
        Some(self.value_at(i))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.spans.len()).map(|i| (self.key_at(i), self.value_at(i)))
    }

    /// As a map of owned strings (for callers that merge or change it).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.spans
            .binary_search_by(|s| self.text[s[0] as usize..s[1] as usize].cmp(key))
            .ok()
    }

    fn key_at(&self, i: usize) -> &str {
        let [start, end, _] = self.spans[i];
        &self.text[start as usize..end as usize]
    }

    fn value_at(&self, i: usize) -> &str {
        let [_, start, end] = self.spans[i];
        &self.text[start as usize..end as usize]
    }

    /// From entries already in key order and unique (a `BTreeMap`'s).
    fn from_sorted<'a>(entries: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let bytes: usize = entries.clone().map(|(k, v)| k.len() + v.len()).sum();
        // Offsets are u32, half the size of usize: a resource's configuration is part of an
        // object the API server stores (at most a few MiB) and the operator's is a file of
        // settings, neither near 4 GiB.
        let mut text = String::with_capacity(bytes);
        let mut spans = Vec::with_capacity(entries.clone().count());
        for (k, v) in entries {
            let key_start = text.len() as u32;
            text.push_str(k);
            let value_start = text.len() as u32;
            text.push_str(v);
            spans.push([key_start, value_start, text.len() as u32]);
        }
        FlatConfig { text, spans }
    }
}

impl From<&BTreeMap<String, String>> for FlatConfig {
    fn from(map: &BTreeMap<String, String>) -> Self {
        Self::from_sorted(map.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

impl From<BTreeMap<String, String>> for FlatConfig {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self::from(&map)
    }
}

/// As a map: `{"key": "value", ...}`.
impl std::fmt::Debug for FlatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Every lookup answers as the map it was packed from, for keys present, absent, before
    /// the first and after the last, prefixes of keys and empty values.
    #[test]
    fn a_packed_configuration_answers_as_its_map() {
        let source = map(&[
            ("rest.port", "8081"),
            ("state.checkpoints.dir", "s3://b/cp"),
            ("state.savepoints.dir", ""),
            ("taskmanager.numberOfTaskSlots", "2"),
            ("a", "first"),
            ("zz", "last"),
            ("état", "non-ASCII"),
        ]);
        let packed = FlatConfig::from(&source);
        assert_eq!(packed.len(), source.len());
        for probe in [
            "rest.port",
            "rest",
            "rest.port.x",
            "state.savepoints.dir",
            "a",
            "",
            "zz",
            "zzz",
            "état",
            "taskmanager.numberOfTaskSlots",
            "missing",
        ] {
            assert_eq!(
                packed.get(probe),
                source.get(probe).map(String::as_str),
                "{probe}"
            );
            assert_eq!(packed.contains_key(probe), source.contains_key(probe));
        }
        let pairs: Vec<(&str, &str)> = packed.iter().collect();
        let expected: Vec<(&str, &str)> = source
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, expected);
        assert_eq!(packed.to_map(), source);
        assert_eq!(format!("{packed:?}"), format!("{source:?}"));
        let empty = FlatConfig::default();
        assert!(empty.is_empty() && empty.get("a").is_none() && empty.iter().next().is_none());
    }
}
