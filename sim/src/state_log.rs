//! Every state (checkpoint or savepoint) the simulated jobs completed, for the invariant that
//! no state is lost.
//!
//! The log only grows: a checkpoint a minute per job is 600,000 states an hour at 10,000
//! deployments. Kept as a record and a path string each, it was 87 MiB of long-lived data
//! written among what a reconcile reads, and the 10,000 run took 3-5 % longer with it than
//! without (BENCHMARKS.md, fifteenth round). So a record is a few numbers in one array: a path
//! is kept as the text before its trailing number (`.../chk-`, shared by all the checkpoints of
//! a job and kept once) and that number, and each owner's records are a chain through the
//! array.

use std::sync::Arc;

use rustc_hash::FxHashMap;

/// An owner's place in the log, to record its states without looking its name up each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerId(u32);

/// One state as read from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State<'a> {
    pub at: i64,
    /// The resource whose job completed it (`Kind/namespace/name`).
    pub owner: &'a str,
    head: &'a str,
    number: u32,
}

impl State<'_> {
    /// Its path, made when asked for (readers filter on `at` first).
    pub fn path(&self) -> String {
        match self.number {
            NO_NUMBER => self.head.to_string(),
            n => format!("{}{n}", self.head),
        }
    }
}

#[derive(Debug, Clone)]
struct Record {
    at: i64,
    owner: u32,
    /// The owner's record before this one (`NONE`: this is its first).
    previous: u32,
    /// The path: `heads[head]`, then `number` unless it is `NO_NUMBER`.
    head: u32,
    number: u32,
}

/// Where an owner's chain stands (by owner id, beside its name in `owners`).
#[derive(Debug, Clone)]
struct Chain {
    /// Its newest record (`NONE`: none yet).
    newest: u32,
    /// The head of its newest path: the next one most often has the same (no lookup then).
    last_head: u32,
}

const NONE: u32 = u32::MAX;
const NO_NUMBER: u32 = u32::MAX;

/// Texts kept once each, by number.
#[derive(Debug, Clone, Default)]
struct Texts {
    by_id: Vec<Arc<str>>,
    ids: FxHashMap<Arc<str>, u32>,
}

impl Texts {
    fn get(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// The text's number, the next one if it is new.
    fn id(&mut self, text: &str) -> u32 {
        if let Some(id) = self.get(text) {
            return id;
        }
        let id = u32::try_from(self.by_id.len())
            .ok()
            .filter(|i| *i != NONE)
            .expect("fewer than 2^32 - 1 texts");
        let text: Arc<str> = Arc::from(text);
        self.by_id.push(text.clone());
        self.ids.insert(text, id);
        id
    }

    fn text(&self, id: u32) -> &str {
        &self.by_id[id as usize]
    }
}

#[derive(Debug, Clone, Default)]
pub struct StateLog {
    records: Vec<Record>,
    /// Path heads.
    heads: Texts,
    /// Owner names; `chains` has each one's chain by the same id.
    owners: Texts,
    chains: Vec<Chain>,
}

impl StateLog {
    /// The owner's id, added if it has none yet.
    pub fn owner(&mut self, name: &str) -> OwnerId {
        let id = self.owners.id(name);
        if id as usize == self.chains.len() {
            self.chains.push(Chain {
                newest: NONE,
                last_head: NONE,
            });
        }
        OwnerId(id)
    }

    /// Records a state of `owner`'s, completed at `at`.
    pub fn push(&mut self, owner: OwnerId, at: i64, path: &str) {
        let index = u32::try_from(self.records.len())
            .ok()
            .filter(|i| *i != NONE)
            .expect("fewer than 2^32 - 1 states");
        let (head, number) = split_number(path);
        let last = self.chains[owner.0 as usize].last_head;
        let head = if last != NONE && self.heads.text(last) == head {
            last
        } else {
            self.heads.id(head)
        };
        let entry = &mut self.chains[owner.0 as usize];
        self.records.push(Record {
            at,
            owner: owner.0,
            previous: entry.newest,
            head,
            number,
        });
        entry.newest = index;
        entry.last_head = head;
    }

    /// [`StateLog::push`] by the owner's name.
    pub fn record(&mut self, owner: &str, at: i64, path: &str) {
        let id = self.owner(owner);
        self.push(id, at, path);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn state(&self, index: u32) -> State<'_> {
        let r = &self.records[index as usize];
        State {
            at: r.at,
            owner: self.owners.text(r.owner),
            head: self.heads.text(r.head),
            number: r.number,
        }
    }

    /// Every state, in the order recorded.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = State<'_>> + '_ {
        (0..self.records.len() as u32).map(|i| self.state(i))
    }

    /// The states of one owner, newest first (times never decrease along the log, so the
    /// first that passes a filter is also the newest that does). Follows the owner's chain.
    pub fn newest_first(&self, owner: &str) -> impl Iterator<Item = State<'_>> + '_ {
        let mut next = self
            .owners
            .get(owner)
            .map(|id| self.chains[id as usize].newest)
            .unwrap_or(NONE);
        std::iter::from_fn(move || {
            let index = next;
            (index != NONE).then(|| {
                next = self.records[index as usize].previous;
                self.state(index)
            })
        })
    }
}

/// A path as the text before its trailing number and that number; the whole path and
/// `NO_NUMBER` when it ends in no number that a `u32` below `NO_NUMBER` gives back as written
/// (`chk-007`, `chk-99999999999`).
fn split_number(path: &str) -> (&str, u32) {
    let digits = path.bytes().rev().take_while(u8::is_ascii_digit).count();
    let (head, tail) = path.split_at(path.len() - digits);
    match tail.parse::<u32>() {
        Ok(n) if n != NO_NUMBER && n.to_string() == tail => (head, n),
        _ => (path, NO_NUMBER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log answers as a list of (at, owner, path) would: in order, per owner and in all.
    #[test]
    fn the_log_answers_as_a_plain_list() {
        let mut log = StateLog::default();
        let mut plain: Vec<(i64, String, String)> = Vec::new();
        let owners = [
            "FlinkDeployment/a/x",
            "FlinkDeployment/a/y",
            "FlinkSessionJob/b/x",
        ];
        let ids: Vec<OwnerId> = owners.iter().map(|o| log.owner(o)).collect();
        assert_eq!(log.owner(owners[1]), ids[1], "one id per name");
        for i in 0..50i64 {
            let o = (i * 7 % 3) as usize;
            // Checkpoints, savepoints, and paths whose number would not come back the same.
            let path = match i % 5 {
                0 => format!("file:///sp/savepoint-{o}-ab{i}c"),
                1 => format!("file:///cp/{o}/chk-0{i}"),
                2 => format!("file:///cp/{o}/chk-{}", u64::from(u32::MAX) + i as u64),
                3 => "7".repeat(i as usize % 3),
                _ => format!("file:///cp/{o}/chk-{i}"),
            };
            if i % 2 == 0 {
                log.push(ids[o], i * 10, &path);
            } else {
                log.record(owners[o], i * 10, &path);
            }
            plain.push((i * 10, owners[o].to_string(), path));
        }
        let as_tuple = |s: State<'_>| (s.at, s.owner.to_string(), s.path());
        assert_eq!(log.len(), plain.len());
        assert_eq!(log.iter().map(as_tuple).collect::<Vec<_>>(), plain);
        for owner in owners {
            let expected: Vec<_> = plain.iter().filter(|s| s.1 == owner).cloned().collect();
            let mut newest_first: Vec<_> = log.newest_first(owner).map(as_tuple).collect();
            newest_first.reverse();
            assert_eq!(newest_first, expected);
        }
        assert_eq!(log.newest_first("FlinkDeployment/a/none").count(), 0);
        assert!(StateLog::default().is_empty());
    }
}
