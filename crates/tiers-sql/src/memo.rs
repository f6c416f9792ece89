//! A process-wide memo of values derived from text or bytes that recur on
//! every statement (a stored expression parsed, a table definition
//! decoded): each distinct input is worked out once. It holds at most a
//! fixed number of entries and starts over when full, so hostile input
//! cannot grow it without bound.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use crate::error::Result;

/// Values of `V` by key `K`, at most `max` of them.
pub(crate) struct Memo<K, V> {
    map: Mutex<Option<HashMap<K, V>>>,
    max: usize,
}

impl<K: Hash + Eq, V: Clone> Memo<K, V> {
    /// An empty memo (usable in a `static`).
    pub(crate) const fn new(max: usize) -> Self {
        Memo {
            map: Mutex::new(None),
            max,
        }
    }

    /// The value for `key`: remembered, or made by `make` and remembered
    /// if it succeeds. `make` runs without the memo's lock held.
    pub(crate) fn get_or_make<Q>(&self, key: &Q, make: impl FnOnce() -> Result<V>) -> Result<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let found = self
            .map
            .lock()
            .expect("memo lock poisoned")
            .as_ref()
            .and_then(|m| m.get(key).cloned());
        if let Some(v) = found {
            return Ok(v);
        }
        let v = make()?;
        let mut map = self.map.lock().expect("memo lock poisoned");
        let map = map.get_or_insert_with(HashMap::new);
        if map.len() >= self.max {
            map.clear();
        }
        map.insert(key.to_owned(), v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn each_key_is_made_once_and_a_full_memo_starts_over() {
        let memo: Memo<String, usize> = Memo::new(2);
        let made = Cell::new(0);
        let get = |k: &str| {
            memo.get_or_make(k, || {
                made.set(made.get() + 1);
                Ok(k.len())
            })
            .unwrap()
        };
        assert_eq!(get("ab"), 2);
        assert_eq!(get("ab"), 2);
        assert_eq!(made.get(), 1);
        get("abc");
        get("abcd"); // full: starts over, keeping only this one
        get("abcd");
        assert_eq!(made.get(), 3);
        get("ab");
        assert_eq!(made.get(), 4);
        // A failure is not remembered.
        let failed = memo.get_or_make("x", || Err(crate::error::SqlError::new("XX000", "no")));
        assert!(failed.is_err());
        assert_eq!(memo.get_or_make("x", || Ok(9)).unwrap(), 9);
    }
}
