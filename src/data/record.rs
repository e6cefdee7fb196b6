//! Splits delimited text into records of fields (RFC 4180): fields optionally enclosed in quotes,
//! inside which delimiters, line breaks and doubled quotes (`""` → `"`) are data; records end at LF
//! or CRLF (a CRLF inside quotes is kept as data). A quote inside an unquoted field is an ordinary
//! character, so TSV files with stray quotes read as written. A UTF-8 byte-order mark at the start
//! of the file is dropped. Reads one line at a time through a `BufRead`, so memory is bounded by
//! the longest record.
//!
//! A quoted field may cross at most [`MAX_QUOTED_LINES`] line breaks and a record may hold at most
//! [`MAX_QUOTED_BYTES`] bytes once a quoted field crosses a line: past either bound, or at the end
//! of the file, the record is [`Syntax::Unclosed`] and the splitter resumes at the line after the
//! record's first, so one stray quote costs one row rather than the rest of the file.

use std::collections::VecDeque;
use std::io::{self, BufRead};

/// The most line breaks one quoted field may cross. Real multi-line fields (addresses, short
/// texts) cross a handful; a stray opening quote crosses every line to the end of the file.
pub const MAX_QUOTED_LINES: usize = 1000;

/// The most bytes a record whose quoted field crosses a line may hold (1 MiB), which also bounds
/// the lines kept to resume after an unclosed quote.
pub const MAX_QUOTED_BYTES: usize = 1 << 20;

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
    /// The quoted field `field` (0-based) reached the end of the file or crossed more than
    /// [`MAX_QUOTED_LINES`] lines or [`MAX_QUOTED_BYTES`] bytes.
    Unclosed { field: usize },
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
    /// The lines after the first of the record being split (kept only while a quoted field
    /// crosses lines), to be read again if the quote turns out unclosed.
    spilled: Vec<Vec<u8>>,
    /// Lines handed back after an unclosed quote, read before the input.
    pending: VecDeque<Vec<u8>>,
    /// Bytes taken from the input, and of those the bytes of the lines in `pending`: the byte
    /// offset after the last record is their difference (the streaming reader resumes there).
    taken: u64,
    pending_bytes: u64,
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
            spilled: Vec::new(),
            pending: VecDeque::new(),
            taken: 0,
            pending_bytes: 0,
        }
    }

    /// Continues a file whose first `lines` lines were read by an earlier splitter: line numbers
    /// go on from there (and no byte-order mark is looked for).
    pub(crate) fn continue_after(&mut self, lines: u64) {
        self.lines = lines;
    }

    /// The input.
    pub(crate) fn get_ref(&self) -> &R {
        &self.input
    }

    /// Bytes of the input consumed by the records returned so far: the offset of the next
    /// record's first byte, relative to where the input started.
    pub(crate) fn offset(&self) -> u64 {
        self.taken - self.pending_bytes
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
        if let Some(line) = self.pending.pop_front() {
            self.pending_bytes -= line.len() as u64;
            self.line = line;
            self.lines += 1;
            return Ok(true);
        }
        self.line.clear();
        let n = self.input.read_until(b'\n', &mut self.line)?;
        if n == 0 {
            return Ok(false);
        }
        self.taken += n as u64;
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
        self.spilled.clear();
        let mut spilled_bytes = self.line.len();
        let mut syntax = Syntax::Ok;
        let mut state = State::FieldStart;
        let mut i = 0;
        loop {
            if i == self.line.len() {
                if state != State::Quoted {
                    break; // the last line of a file without a final line break
                }
                let field = self.ends.len();
                if self.spilled.len() >= MAX_QUOTED_LINES
                    || spilled_bytes > MAX_QUOTED_BYTES
                    || !self.read_line()?
                {
                    self.resume_after(first_line);
                    return Ok(Some(Record {
                        line: first_line,
                        syntax: Syntax::Unclosed { field },
                    }));
                }
                spilled_bytes += self.line.len();
                self.spilled.push(self.line.clone());
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
        self.spilled.clear();
        Ok(Some(Record {
            line: first_line,
            syntax,
        }))
    }
}

impl<R> RecordSplitter<R> {
    /// Hands the record's later lines back so the next record starts at the line after
    /// `first_line`, and drops the record's fields.
    fn resume_after(&mut self, first_line: u64) {
        for line in self.spilled.drain(..).rev() {
            self.pending_bytes += line.len() as u64;
            self.pending.push_front(line);
        }
        self.lines = first_line;
        self.bytes.clear();
        self.ends.clear();
        self.ends.push(0);
    }
}
