//! Streaming text decoding: GBK/GB18030 (and any other `encoding_rs` encoding) to UTF-8 as a
//! [`Read`], so a CSV from Chinese Excel is parsed as it is decoded instead of being turned into
//! one `String` the size of the file first.

use std::io::{self, Read};

use encoding_rs::{Decoder, DecoderResult, Encoding};

/// Reads `inner` in `encoding` and yields UTF-8. A byte sequence that is not valid in the
/// encoding is an `InvalidData` error ("text is not valid GB18030"). A BOM is honoured and
/// removed, as [`Encoding::decode`] does.
#[derive(Debug)]
pub struct DecodingReader<R> {
    inner: R,
    encoding: &'static Encoding,
    decoder: Decoder,
    input: Box<[u8]>,
    start: usize,
    end: usize,
    output: Vec<u8>,
    pos: usize,
    eof: bool,
    done: bool,
}

impl<R: Read> DecodingReader<R> {
    pub fn new(inner: R, encoding: &'static Encoding) -> Self {
        DecodingReader {
            inner,
            encoding,
            decoder: encoding.new_decoder(),
            input: vec![0u8; 16 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
            output: Vec::new(),
            pos: 0,
            eof: false,
            done: false,
        }
    }
}

impl<R: Read> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.output.len() {
                let n = buf.len().min(self.output.len() - self.pos);
                buf[..n].copy_from_slice(&self.output[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = self.inner.read(&mut self.input)?;
                self.eof = self.end == 0;
            }
            let pending = &self.input[self.start..self.end];
            let room = self.decoder.max_utf8_buffer_length_without_replacement(pending.len()).unwrap_or(64 * 1024);
            self.output.clear();
            self.output.resize(room.max(16), 0);
            self.pos = 0;
            let (result, read, written) =
                self.decoder.decode_to_utf8_without_replacement(pending, &mut self.output, self.eof);
            self.start += read;
            self.output.truncate(written);
            match result {
                DecoderResult::InputEmpty => self.done = self.eof,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(..) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("text is not valid {}", self.encoding.name()),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], enc: &'static Encoding) -> io::Result<String> {
        let mut s = String::new();
        // One byte at a time from the source: characters split across reads still decode.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        DecodingReader::new(Trickle(bytes), enc).read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn gbk_streams_to_utf8() {
        let text = "名称,地址\n洪山区,珞喻路1001号\n".repeat(2000);
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        assert_eq!(decode(&gbk, encoding_rs::GB18030).unwrap(), text);
        assert_eq!(decode("\u{feff}井盖".as_bytes(), encoding_rs::GB18030).unwrap(), "井盖", "a UTF-8 BOM wins");
        let e = decode(b"\x81\x20", encoding_rs::GBK).unwrap_err();
        assert_eq!(e.to_string(), "text is not valid GBK");
    }
}
