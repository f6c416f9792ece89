//! UNION, INTERSECT and EXCEPT, with and without ALL: rows are told apart
//! by their hash keys, and the rows held are counted against the
//! statement's memory limit.

use std::collections::{HashMap, HashSet};

use crate::ast::SetOp;
use crate::error::Result;
use crate::value::Value;

use super::super::Plan;
use super::{Exec, Rows, hash_key};

impl Exec<'_> {
    pub(super) fn set_op<'b>(
        &'b self,
        op: SetOp,
        all: bool,
        left: &'b Plan,
        right: &'b Plan,
        outer: &'b [&'b [Value]],
    ) -> Result<Rows<'b>> {
        if op == SetOp::Union {
            let both = self.rows(left, outer)?.chain(self.rows(right, outer)?);
            if all {
                return Ok(Box::new(both));
            }
            let mut seen = HashSet::new();
            return Ok(Box::new(both.filter_map(move |row| match row {
                Ok(row) => {
                    let key = hash_key(&row);
                    if let Err(e) = self.hold(key.len() + 32) {
                        return Some(Err(e));
                    }
                    seen.insert(key).then_some(Ok(row))
                }
                Err(e) => Some(Err(e)),
            })));
        }
        let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
        for row in self.rows(right, outer)? {
            let key = hash_key(&row?);
            self.hold(key.len() + 32)?;
            *counts.entry(key).or_default() += 1;
        }
        let mut emitted = HashSet::new();
        let input = self.rows(left, outer)?;
        Ok(Box::new(input.filter_map(move |row| {
            let row = match row {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            let key = hash_key(&row);
            let count = counts.get_mut(&key);
            let keep = match (op, all) {
                (SetOp::Intersect, true) => match count {
                    Some(c) if *c > 0 => {
                        *c -= 1;
                        true
                    }
                    _ => false,
                },
                (SetOp::Intersect, false) => count.is_some() && emitted.insert(key),
                (SetOp::Except, true) => match count {
                    Some(c) if *c > 0 => {
                        *c -= 1;
                        false
                    }
                    _ => true,
                },
                _ => count.is_none() && emitted.insert(key),
            };
            keep.then_some(Ok(row))
        })))
    }
}
