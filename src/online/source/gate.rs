//! The bytes a streaming table reader may parse: what has arrived, up to the end of its last
//! complete line. A writer appending to a file (or a producer piping into stdin) is caught between
//! writes at arbitrary bytes; the half-written line after the last `\n` stays behind the gate until
//! its end arrives, so it is never parsed as a short row. Once the input has ended for good (a file
//! read without following, stdin closed) the tail is let through as the last line, as a training
//! file's last line without a final line break is.
//!
//! [`Gate`] is a `BufRead` whose end of input is temporary: `fill_buf` returning nothing means "no
//! complete line now"; the streaming reader waits and asks again.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};

use crate::error::{Error, Result};

/// Bytes asked of a file per read.
const CHUNK: usize = 1 << 16;

/// Chunks the stdin thread may run ahead of the reader: bounds its memory to ~this × 64 KiB.
const CHANNEL_CHUNKS: usize = 16;

/// Where a gate's bytes come from.
pub(crate) enum Inflow {
    /// A file from its current position. Followed: reading 0 bytes means "not written yet";
    /// otherwise it is the end.
    File { file: File, follow: bool },
    /// Chunks read by a thread (stdin, which blocks); the thread hanging up is the end.
    Chunks(Receiver<io::Result<Vec<u8>>>),
}

/// A `BufRead` over the complete lines that have arrived so far.
pub(crate) struct Gate {
    inflow: Inflow,
    buf: Vec<u8>,
    /// `buf[start..complete]` may be parsed; `buf[complete..]` is an unfinished line.
    start: usize,
    complete: usize,
    ended: bool,
    /// Bytes taken from the inflow so far.
    taken: u64,
}

impl Gate {
    pub(crate) fn new(inflow: Inflow) -> Self {
        Gate {
            inflow,
            buf: Vec::new(),
            start: 0,
            complete: 0,
            ended: false,
            taken: 0,
        }
    }

    /// No byte will come any more (what has come may still be unread).
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Bytes taken from the inflow so far (read, whether parsed or not).
    pub(crate) fn taken(&self) -> u64 {
        self.taken
    }

    /// Whether a complete line (or, once ended, any byte) is there to be read.
    pub(crate) fn has_line(&mut self) -> io::Result<bool> {
        Ok(!self.fill_buf()?.is_empty())
    }

    /// Takes what the inflow has now, until a complete line is there or nothing more comes.
    fn pull(&mut self) -> io::Result<()> {
        self.buf.drain(..self.start);
        self.complete -= self.start;
        self.start = 0;
        while !self.ended && self.complete == 0 {
            let got = self.take()?;
            self.taken += got as u64;
            self.complete = if self.ended {
                self.buf.len()
            } else {
                self.buf
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1)
            };
            if got == 0 {
                break;
            }
        }
        Ok(())
    }

    /// One read of the inflow appended to `buf`: the bytes it gave (0: none now, or the end).
    fn take(&mut self) -> io::Result<usize> {
        match &mut self.inflow {
            Inflow::File { file, follow } => {
                let len = self.buf.len();
                self.buf.resize(len + CHUNK, 0);
                let n = loop {
                    match file.read(&mut self.buf[len..]) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other,
                    }
                };
                self.buf.truncate(len + *n.as_ref().unwrap_or(&0));
                let n = n?;
                self.ended = n == 0 && !*follow;
                Ok(n)
            }
            Inflow::Chunks(chunks) => match chunks.try_recv() {
                Ok(Ok(chunk)) => {
                    self.buf.extend_from_slice(&chunk);
                    Ok(chunk.len())
                }
                Ok(Err(e)) => Err(e),
                Err(TryRecvError::Empty) => Ok(0),
                Err(TryRecvError::Disconnected) => {
                    self.ended = true;
                    Ok(0)
                }
            },
        }
    }
}

impl Read for Gate {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Gate {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.complete {
            self.pull()?;
        }
        Ok(&self.buf[self.start..self.complete])
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.complete);
    }
}

/// Reads `input` on a thread into chunks for an [`Inflow::Chunks`]. A blocking read (stdin)
/// cannot be interrupted, so it happens there, and the reader polls the channel and its stop
/// flag. The thread ends at the end of the input, on a read error (handed on) or when the
/// reader is dropped (at its next chunk; until then it may stay blocked in a read, which is
/// harmless: the process is ending or has stopped reading).
pub(crate) fn read_on_thread<R: BufRead + Send + 'static>(
    mut input: R,
) -> Result<Receiver<io::Result<Vec<u8>>>> {
    let (sender, receiver) = sync_channel(CHANNEL_CHUNKS);
    std::thread::Builder::new()
        .name("wgrec-stream-input".into())
        .spawn(move || loop {
            let chunk = match input.fill_buf() {
                Ok([]) => break,
                Ok(bytes) => bytes.to_vec(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = sender.send(Err(e));
                    break;
                }
            };
            input.consume(chunk.len());
            if sender.send(Ok(chunk)).is_err() {
                break;
            }
        })
        .map_err(|e| Error::Thread {
            thread: "the stream input",
            message: format!("cannot start: {e}"),
        })?;
    Ok(receiver)
}
