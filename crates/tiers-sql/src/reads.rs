//! Reading through either kind of storage transaction, so table access
//! code serves both read-only queries and statements inside a write
//! transaction (which must see their own writes).

use std::ops::Bound;

use tiers_storage::{Entry, ReadTxn, Result, WriteTxn};

/// An ordered scan of a tree.
pub type Scan<'a> = Box<dyn Iterator<Item = Result<Entry>> + 'a>;

/// The reads table access needs.
pub trait Reads {
    /// A point lookup in a B+tree.
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// An ascending range scan of a B+tree.
    fn scan<'a>(&'a self, tree: &str, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Scan<'a>>;
    /// A descending range scan of a B+tree.
    fn scan_rev<'a>(&'a self, tree: &str, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Scan<'a>>;
    /// Every value under a key in a hash index.
    fn hash_get(&self, tree: &str, key: &[u8]) -> Result<Vec<Vec<u8>>>;
}

impl Reads for ReadTxn {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        ReadTxn::get(self, tree, key)
    }
    fn scan<'a>(&'a self, tree: &str, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Scan<'a>> {
        Ok(Box::new(self.range(tree, (lo, hi))?))
    }
    fn scan_rev<'a>(&'a self, tree: &str, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Scan<'a>> {
        Ok(Box::new(self.range_rev(tree, (lo, hi))?))
    }
    fn hash_get(&self, tree: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        ReadTxn::hash_get(self, tree, key)
    }
}

impl Reads for WriteTxn {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        WriteTxn::get(self, tree, key)
    }
    fn scan<'a>(&'a self, tree: &str, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Scan<'a>> {
        Ok(Box::new(self.range(tree, (lo, hi))?))
    }
    fn scan_rev<'a>(&'a self, tree: &str, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Result<Scan<'a>> {
        Ok(Box::new(self.range_rev(tree, (lo, hi))?))
    }
    fn hash_get(&self, tree: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        WriteTxn::hash_get(self, tree, key)
    }
}
