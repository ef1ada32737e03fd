//! Recorded Hyperliquid `userFills` websocket frames, one per line:
//! `{"channel":"userFills","data":{"isSnapshot":true?,"user":"0x…","fills":[{coin, px, sz,
//! side, time, startPosition, tid, …}]}}`, as `UserFill` events of `hyperliquid:COIN/USDC`
//! (what the wallet tracker sends in a session), each (wallet, `tid`) once. Other channels
//! (`subscriptionResponse`, `pong`) are skipped; a malformed line is reported and skipped.

use super::{Malformed, SourceItem, TradeSource};
use crate::domain::MarketEvent;
use crate::feeds::venues::VenueCodec;
use crate::wallets::tracker::user_fills::UserFillsCodec;
use std::collections::VecDeque;
use std::io::BufRead;

pub struct UserFillsSource {
    reader: Box<dyn BufRead + Send>,
    name: String,
    line: u64,
    codec: UserFillsCodec,
    pending: VecDeque<SourceItem>,
}

impl UserFillsSource {
    pub fn new(reader: Box<dyn BufRead + Send>, name: String) -> Self {
        Self {
            reader,
            name,
            line: 0,
            codec: UserFillsCodec::any_user(Default::default()),
            pending: VecDeque::new(),
        }
    }

    fn malformed(&self, reason: String) -> SourceItem {
        Err(Malformed {
            file: self.name.clone(),
            line: self.line,
            reason,
        })
    }

    /// Reads lines until one yields items; false at the end of the file.
    fn fill(&mut self) -> bool {
        let mut text = String::new();
        while self.pending.is_empty() {
            text.clear();
            self.line += 1;
            match self.reader.read_line(&mut text) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) => {
                    let m = self.malformed(format!("read error: {e}"));
                    self.pending.push_back(m);
                    return true;
                }
            }
            let t = text.trim();
            if t.is_empty() {
                continue;
            }
            let mut out = Vec::new();
            let res = self.codec.on_message(t, 0, &mut out);
            self.pending
                .extend(out.into_iter().map(Ok::<MarketEvent, Malformed>));
            if let Err(e) = res {
                let m = self.malformed(e);
                self.pending.push_back(m);
            }
        }
        true
    }
}

impl TradeSource for UserFillsSource {
    fn next_item(&mut self) -> Option<SourceItem> {
        if self.pending.is_empty() && !self.fill() {
            return None;
        }
        self.pending.pop_front()
    }
    fn name(&self) -> &str {
        &self.name
    }
}
