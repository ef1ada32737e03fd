//! Streams the elements of a top-level JSON array one at a time, so a large
//! `[[…], […], …]` file is never held whole in memory.

use std::io::BufRead;

/// The longest element held (1 MiB): a longer one (or an unterminated string) is skipped and
/// reported, never held whole.
pub const MAX_ELEMENT: usize = 1 << 20;

/// Splits a top-level JSON array into element byte slices.
pub struct JsonArrayStream<R: BufRead> {
    reader: R,
    buf: Vec<u8>,
    started: bool,
    done: bool,
    /// 1-based line of the element's first byte, for error messages.
    line: u64,
    /// The element being read passed [`MAX_ELEMENT`]: its bytes are no longer kept.
    oversize: bool,
}

impl Element {
    /// The element parsed by `parse` into a source item; errors become malformed lines of `file`.
    pub fn into_item(
        self,
        file: &str,
        parse: impl FnOnce(&[u8]) -> Result<crate::domain::MarketEvent, String>,
    ) -> super::SourceItem {
        let (result, line) = match self {
            Element::Item(bytes, line) => (parse(&bytes), line),
            Element::Error(reason, line) => (Err(reason), line),
        };
        result.map_err(|reason| super::Malformed {
            file: file.to_string(),
            line,
            reason,
        })
    }
}

pub enum Element {
    /// Raw bytes of one element and the line it starts on.
    Item(Vec<u8>, u64),
    /// The stream is not a well-formed array at `line`.
    Error(String, u64),
}

impl<R: BufRead> JsonArrayStream<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(256),
            started: false,
            done: false,
            line: 1,
            oversize: false,
        }
    }

    /// Keeps `b` unless the element is already [`MAX_ELEMENT`] long.
    fn keep(&mut self, b: u8) {
        if self.buf.len() < MAX_ELEMENT {
            self.buf.push(b);
        } else {
            self.oversize = true;
        }
    }

    /// The element read so far, or the error for an oversized one.
    fn finish(&mut self, start_line: u64) -> Element {
        if std::mem::take(&mut self.oversize) {
            self.buf.clear();
            return Element::Error(
                format!("element longer than {MAX_ELEMENT} bytes, skipped"),
                start_line,
            );
        }
        trim_end(&mut self.buf);
        Element::Item(std::mem::take(&mut self.buf), start_line)
    }

    fn byte(&mut self) -> Option<u8> {
        let b = {
            let data = self.reader.fill_buf().ok()?;
            *data.first()?
        };
        self.reader.consume(1);
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    pub fn next_element(&mut self) -> Option<Element> {
        if self.done {
            return None;
        }
        if !self.started {
            loop {
                match self.byte() {
                    Some(b'[') => break,
                    Some(b) if b.is_ascii_whitespace() => continue,
                    _ => {
                        self.done = true;
                        return Some(Element::Error("expected '['".into(), self.line));
                    }
                }
            }
            self.started = true;
        }
        self.buf.clear();
        let (mut depth, mut in_str, mut esc) = (0i32, false, false);
        let mut start_line = self.line;
        loop {
            let Some(b) = self.byte() else {
                self.done = true;
                return if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                    None
                } else {
                    Some(Element::Error("unexpected end of file".into(), start_line))
                };
            };
            if in_str {
                self.keep(b);
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    in_str = false;
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'[' | b'{' => depth += 1,
                b']' | b'}' if depth > 0 => depth -= 1,
                b']' => {
                    // End of the top-level array.
                    self.done = true;
                    return if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                        None
                    } else {
                        Some(self.finish(start_line))
                    };
                }
                b',' if depth == 0 => return Some(self.finish(start_line)),
                _ => {}
            }
            if self.buf.is_empty() && b.is_ascii_whitespace() {
                start_line = self.line;
                continue;
            }
            self.keep(b);
        }
    }
}

fn trim_end(buf: &mut Vec<u8>) {
    while buf.last().is_some_and(|b| b.is_ascii_whitespace()) {
        buf.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nested_elements() {
        let data = b" [[1,\"a,]\",null],\n [2, {\"x\":[3]}] ]";
        let mut s = JsonArrayStream::new(&data[..]);
        let mut items = vec![];
        while let Some(e) = s.next_element() {
            match e {
                Element::Item(b, line) => items.push((String::from_utf8(b).unwrap(), line)),
                Element::Error(m, _) => panic!("{m}"),
            }
        }
        assert_eq!(
            items,
            vec![
                ("[1,\"a,]\",null]".to_string(), 1),
                ("[2, {\"x\":[3]}]".to_string(), 2)
            ]
        );
    }

    /// A 3 MiB element (a string that never ends would be the same) is skipped and reported;
    /// at most [`MAX_ELEMENT`] of it is held; the next element reads normally.
    #[test]
    fn an_oversized_element_is_skipped_with_bounded_memory() {
        let big = format!("[[\"{}\"],[1]]", "x".repeat(3 << 20));
        let mut s = JsonArrayStream::new(big.as_bytes());
        match s.next_element() {
            Some(Element::Error(m, 1)) => assert!(m.contains("longer than"), "{m}"),
            _ => panic!("want an error"),
        }
        assert!(s.buf.capacity() <= 2 * MAX_ELEMENT);
        assert!(matches!(s.next_element(), Some(Element::Item(b, _)) if b == b"[1]"));
        assert!(s.next_element().is_none());
    }

    #[test]
    fn truncated_is_an_error() {
        let mut s = JsonArrayStream::new(&b"[[1,2],[3"[..]);
        assert!(matches!(s.next_element(), Some(Element::Item(..))));
        assert!(matches!(s.next_element(), Some(Element::Error(..))));
        assert!(s.next_element().is_none());
    }
}
