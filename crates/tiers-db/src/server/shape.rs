//! The layout of every frontend message, checked as its bytes pass.
//!
//! pgwire decodes a message body from the connection's whole read buffer,
//! trusting the body to hold what its type promises: a Bind whose counts
//! claim more than its length panicked the connection's task (the `pgwire`
//! fuzzer's first find), and a string without its NUL, or a body with
//! bytes left over, would be read into the next message. [`BodyCheck`]
//! follows each body field by field as [`super::framing::Guarded`] passes
//! it on, with a few bytes of state and no copy, so a body that does not
//! match its type ends the connection with 08P01 ("invalid message format",
//! as PostgreSQL answers) before pgwire decodes it.

/// One step of a body's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// A NUL-terminated string.
    Str,
    /// One byte.
    Byte,
    /// A 32-bit integer.
    I32,
    /// A 16-bit count (not negative) of the items of the next op.
    Count16,
    /// Exactly one item of the next op.
    One,
    /// The counted 16-bit integers.
    EachI16,
    /// The counted 32-bit integers.
    EachI32,
    /// The counted values: a 32-bit length (-1: NULL) and that many bytes.
    EachValue,
    /// The startup message's protocol version, which decides the rest.
    Version,
    /// Name and value strings until an empty name (startup parameters).
    Pairs,
    /// Anything, to the end of the body.
    Rest,
    /// The end: no byte may follow.
    End,
}

use Op::*;

const QUERY: &[Op] = &[Str, End];
const PARSE: &[Op] = &[Str, Str, Count16, EachI32, End];
const BIND: &[Op] = &[
    Str, Str, Count16, EachI16, Count16, EachValue, Count16, EachI16, End,
];
const EXECUTE: &[Op] = &[Str, I32, End];
const DESCRIBE_OR_CLOSE: &[Op] = &[Byte, Str, End];
const EMPTY: &[Op] = &[End];
const ANYTHING: &[Op] = &[Rest];
const COPY_FAIL: &[Op] = &[Str, End];
const SASL_INITIAL: &[Op] = &[Str, One, EachValue, End];
const STARTUP: &[Op] = &[Version];
const STARTUP_PARAMETERS: &[Op] = &[Pairs, End];
const CANCEL: &[Op] = &[I32, I32, End];

const CANCEL_CODE: i32 = 80877102;
const SSL_CODE: i32 = 80877103;
const GSSENC_CODE: i32 = 80877104;

/// Checks one message body as it passes.
#[derive(Debug)]
pub struct BodyCheck {
    kind: &'static str,
    ops: &'static [Op],
    pc: usize,
    /// An integer being collected: its bytes so far.
    int: [u8; 4],
    have: u8,
    /// Items left of the counted op.
    reps: u16,
    /// Bytes of a value still to pass.
    skip: usize,
    /// In `Pairs`: bytes of the current string so far.
    pair_len: usize,
    /// In `Pairs`: the current string is a value (else a name).
    in_value: bool,
}

impl BodyCheck {
    /// The check for the startup message (no type byte).
    pub fn startup() -> BodyCheck {
        BodyCheck::new("startup", STARTUP)
    }

    /// The check for a message of type `tag`; `sasl_initial` when this
    /// `p` message must be a SASLInitialResponse (the first of a SCRAM
    /// exchange).
    pub fn for_type(tag: u8, sasl_initial: bool) -> BodyCheck {
        let (kind, ops) = match tag {
            b'Q' => ("Query", QUERY),
            b'P' => ("Parse", PARSE),
            b'B' => ("Bind", BIND),
            b'E' => ("Execute", EXECUTE),
            b'D' => ("Describe", DESCRIBE_OR_CLOSE),
            b'C' => ("Close", DESCRIBE_OR_CLOSE),
            b'H' => ("Flush", EMPTY),
            b'S' => ("Sync", EMPTY),
            b'X' => ("Terminate", EMPTY),
            b'c' => ("CopyDone", EMPTY),
            b'f' => ("CopyFail", COPY_FAIL),
            b'p' if sasl_initial => ("SASLInitialResponse", SASL_INITIAL),
            // CopyData, password and SASL responses are raw bytes to
            // pgwire; other types it refuses by their byte.
            _ => ("message", ANYTHING),
        };
        BodyCheck::new(kind, ops)
    }

    fn new(kind: &'static str, ops: &'static [Op]) -> BodyCheck {
        BodyCheck {
            kind,
            ops,
            pc: 0,
            int: [0; 4],
            have: 0,
            reps: 0,
            skip: 0,
            pair_len: 0,
            in_value: false,
        }
    }

    /// The message's name, for errors.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Follows `bytes`, the next part of the body.
    pub fn consume(&mut self, mut bytes: &[u8]) -> Result<(), &'static str> {
        while !bytes.is_empty() {
            match self.ops[self.pc] {
                Str => match bytes.iter().position(|&b| b == 0) {
                    Some(at) => {
                        bytes = &bytes[at + 1..];
                        self.pc += 1;
                    }
                    None => bytes = &[],
                },
                Byte => {
                    bytes = &bytes[1..];
                    self.pc += 1;
                }
                I32 => {
                    if self.int(&mut bytes, 4).is_some() {
                        self.pc += 1;
                    }
                }
                Count16 => {
                    if let Some(n) = self.int(&mut bytes, 2) {
                        if n < 0 {
                            return Err("has a negative count");
                        }
                        self.reps = n as u16;
                        self.pc += 1;
                    }
                }
                One => {
                    self.reps = 1;
                    self.pc += 1;
                }
                EachI16 | EachI32 if self.reps == 0 => self.pc += 1,
                EachI16 => {
                    if self.int(&mut bytes, 2).is_some() {
                        self.reps -= 1;
                    }
                }
                EachI32 => {
                    if self.int(&mut bytes, 4).is_some() {
                        self.reps -= 1;
                    }
                }
                EachValue if self.skip > 0 => {
                    let n = self.skip.min(bytes.len());
                    self.skip -= n;
                    bytes = &bytes[n..];
                }
                EachValue if self.reps == 0 => self.pc += 1,
                EachValue => {
                    if let Some(len) = self.int(&mut bytes, 4) {
                        if len < -1 {
                            return Err("has a negative value length");
                        }
                        self.skip = len.max(0) as usize;
                        self.reps -= 1;
                    }
                }
                Version => {
                    if let Some(code) = self.int(&mut bytes, 4) {
                        self.ops = match code {
                            CANCEL_CODE => CANCEL,
                            SSL_CODE | GSSENC_CODE => EMPTY,
                            _ => STARTUP_PARAMETERS,
                        };
                        self.pc = 0;
                    }
                }
                Pairs => match bytes.iter().position(|&b| b == 0) {
                    Some(at) => {
                        let empty_name = !self.in_value && self.pair_len == 0 && at == 0;
                        self.pair_len = 0;
                        bytes = &bytes[at + 1..];
                        if empty_name {
                            self.pc += 1;
                        } else {
                            self.in_value = !self.in_value;
                        }
                    }
                    None => {
                        self.pair_len += bytes.len();
                        bytes = &[];
                    }
                },
                Rest => bytes = &[],
                End => return Err("has bytes after its last field"),
            }
        }
        Ok(())
    }

    /// At the end of the body: whether every field was complete.
    pub fn finish(&mut self) -> Result<(), &'static str> {
        if self.have != 0 || self.skip != 0 {
            return Err("ends before its fields do");
        }
        loop {
            match self.ops[self.pc] {
                // Counted items all read (or none counted): nothing is due.
                EachI16 | EachI32 | EachValue if self.reps == 0 => self.pc += 1,
                End | Rest => return Ok(()),
                _ => return Err("ends before its fields do"),
            }
        }
    }

    /// Collects a big-endian integer of `n` bytes; `Some` once complete.
    fn int(&mut self, bytes: &mut &[u8], n: u8) -> Option<i32> {
        let take = usize::from(n - self.have).min(bytes.len());
        let at = usize::from(self.have);
        self.int[at..at + take].copy_from_slice(&bytes[..take]);
        self.have += take as u8;
        *bytes = &bytes[take..];
        if self.have < n {
            return None;
        }
        self.have = 0;
        Some(match n {
            2 => i32::from(i16::from_be_bytes([self.int[0], self.int[1]])),
            _ => i32::from_be_bytes(self.int),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `body` as type `tag`, split at every point (bytes arrive in
    /// any pieces); all splits must agree.
    fn check(tag: Option<u8>, body: &[u8]) -> Result<(), &'static str> {
        let run = |parts: &[&[u8]]| {
            let mut c = match tag {
                Some(t) => BodyCheck::for_type(t, t == b'p'),
                None => BodyCheck::startup(),
            };
            for p in parts {
                c.consume(p)?;
            }
            c.finish()
        };
        let whole = run(&[body]);
        for at in 0..=body.len() {
            assert_eq!(run(&[&body[..at], &body[at..]]), whole, "split at {at}");
        }
        let bytewise: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(run(&bytewise), whole, "byte by byte");
        whole
    }

    fn bind(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = b"portal\0stmt\0".to_vec();
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(values.len() as i16).to_be_bytes());
        for v in values {
            match v {
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v);
                }
            }
        }
        b.extend_from_slice(&0i16.to_be_bytes());
        b
    }

    #[test]
    fn well_formed_messages_pass() {
        assert_eq!(check(Some(b'Q'), b"SELECT 1\0"), Ok(()));
        assert_eq!(
            check(Some(b'B'), &bind(&[Some(b"42"), None, Some(b"")])),
            Ok(())
        );
        assert_eq!(check(Some(b'B'), &bind(&[])), Ok(()));
        let mut parse = b"s\0SELECT $1\0".to_vec();
        parse.extend_from_slice(&[0, 1, 0, 0, 0, 23]);
        assert_eq!(check(Some(b'P'), &parse), Ok(()));
        assert_eq!(check(Some(b'E'), b"\0\0\0\0\0"), Ok(()));
        assert_eq!(check(Some(b'D'), b"Sname\0"), Ok(()));
        assert_eq!(check(Some(b'S'), b""), Ok(()));
        assert_eq!(check(Some(b'd'), b"any\0bytes"), Ok(()));
        let mut sasl = b"SCRAM-SHA-256\0".to_vec();
        sasl.extend_from_slice(&3i32.to_be_bytes());
        sasl.extend_from_slice(b"n,,");
        assert_eq!(check(Some(b'p'), &sasl), Ok(()));
        let mut startup = 196608i32.to_be_bytes().to_vec();
        startup.extend_from_slice(b"user\0tiers\0database\0\0\0");
        assert_eq!(check(None, &startup), Ok(()));
        let mut cancel = CANCEL_CODE.to_be_bytes().to_vec();
        cancel.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(check(None, &cancel), Ok(()));
    }

    #[test]
    fn malformed_messages_are_refused() {
        // The fuzzer's find: a Bind whose format count runs past its end.
        assert_eq!(
            check(Some(b'B'), b"\0\0\xff\xff\0\x05"),
            Err("has a negative count")
        );
        assert_eq!(
            check(Some(b'B'), b"\0\0\0\x05\0\x01"),
            Err("ends before its fields do")
        );
        let mut long_value = bind(&[Some(b"42")]);
        long_value[21] = 9; // the value claims 9 bytes
        assert!(check(Some(b'B'), &long_value).is_err());
        assert_eq!(
            check(Some(b'Q'), b"SELECT 1"),
            Err("ends before its fields do")
        );
        assert_eq!(
            check(Some(b'Q'), b"SELECT 1\0X"),
            Err("has bytes after its last field")
        );
        assert_eq!(
            check(Some(b'S'), b"x"),
            Err("has bytes after its last field")
        );
        assert_eq!(
            check(Some(b'E'), b"\0\0\0"),
            Err("ends before its fields do")
        );
        let mut sasl = b"SCRAM-SHA-256\0".to_vec();
        sasl.extend_from_slice(&100i32.to_be_bytes());
        sasl.extend_from_slice(b"n,,");
        assert!(check(Some(b'p'), &sasl).is_err(), "a length past the end");
        let mut startup = 196608i32.to_be_bytes().to_vec();
        startup.extend_from_slice(b"user\0tiers");
        assert!(
            check(None, &startup).is_err(),
            "no terminating empty string"
        );
    }
}
