//! Splits delimited text into records of fields (RFC 4180): fields optionally enclosed in quotes,
//! inside which delimiters, line breaks and doubled quotes (`""` → `"`) are data; records end at LF
//! or CRLF (a CRLF inside quotes is kept as data). A quote inside an unquoted field is an ordinary
//! character, so TSV files with stray quotes read as written. A UTF-8 byte-order mark at the start
//! of the file is dropped. Reads one line at a time through a `BufRead`, so memory is bounded by
//! the longest record.

use std::io::{self, BufRead};

/// One record's fields, borrowed from the splitter's buffers.
pub(crate) struct Fields<'a> {
    bytes: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Fields<'a> {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn get(&self, i: usize) -> &'a [u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

/// What the splitter found wrong with a record's syntax (the record is still consumed whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// Well formed.
    Ok,
    /// A closing quote followed by something other than a delimiter or the end of the record, in
    /// field `field` (0-based).
    AfterClosingQuote { field: usize },
    /// The file ended inside a quoted field.
    Unclosed,
}

/// A record: its first line (1-based) and whether its syntax was sound.
pub(crate) struct Record {
    pub(crate) line: u64,
    pub(crate) syntax: Syntax,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// The record splitter.
pub(crate) struct RecordSplitter<R> {
    input: R,
    delimiter: u8,
    quote: Option<u8>,
    lines: u64,
    line: Vec<u8>,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl<R: BufRead> RecordSplitter<R> {
    pub(crate) fn new(input: R, delimiter: u8, quote: Option<u8>) -> Self {
        RecordSplitter {
            input,
            delimiter,
            quote,
            lines: 0,
            line: Vec::new(),
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Lines consumed so far.
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// The fields of the record last returned by [`Self::next_record`].
    pub(crate) fn fields(&self) -> Fields<'_> {
        Fields {
            bytes: &self.bytes,
            ends: &self.ends,
        }
    }

    fn read_line(&mut self) -> io::Result<bool> {
        self.line.clear();
        let n = self.input.read_until(b'\n', &mut self.line)?;
        if n == 0 {
            return Ok(false);
        }
        if self.lines == 0 && self.line.starts_with(b"\xEF\xBB\xBF") {
            self.line.drain(..3);
        }
        self.lines += 1;
        Ok(true)
    }

    /// Reads the next record; `None` at the end of the input.
    pub(crate) fn next_record(&mut self) -> io::Result<Option<Record>> {
        self.bytes.clear();
        self.ends.clear();
        if !self.read_line()? {
            return Ok(None);
        }
        let first_line = self.lines;
        let mut syntax = Syntax::Ok;
        let mut state = State::FieldStart;
        let mut i = 0;
        loop {
            if i == self.line.len() {
                if state != State::Quoted {
                    break; // the last line of a file without a final line break
                }
                if !self.read_line()? {
                    syntax = Syntax::Unclosed;
                    break;
                }
                i = 0;
            }
            let b = self.line[i];
            i += 1;
            let end_of_line =
                b == b'\n' || (b == b'\r' && (i == self.line.len() || self.line[i] == b'\n'));
            match state {
                State::Quoted => {
                    if Some(b) == self.quote {
                        state = State::QuoteInQuoted;
                    } else {
                        self.bytes.push(b);
                    }
                    continue;
                }
                State::QuoteInQuoted if Some(b) == self.quote => {
                    self.bytes.push(b);
                    state = State::Quoted;
                    continue;
                }
                _ => {}
            }
            if end_of_line {
                break;
            }
            if b == self.delimiter {
                self.ends.push(self.bytes.len());
                state = State::FieldStart;
                continue;
            }
            match state {
                State::FieldStart if Some(b) == self.quote => state = State::Quoted,
                State::QuoteInQuoted => {
                    if syntax == Syntax::Ok {
                        syntax = Syntax::AfterClosingQuote {
                            field: self.ends.len(),
                        };
                    }
                    self.bytes.push(b);
                    state = State::Unquoted;
                }
                _ => {
                    self.bytes.push(b);
                    state = State::Unquoted;
                }
            }
        }
        self.ends.push(self.bytes.len());
        Ok(Some(Record {
            line: first_line,
            syntax,
        }))
    }
}
