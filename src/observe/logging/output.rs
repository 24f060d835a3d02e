//! Where log lines are written: at once, or through a buffer that a thread writes out.

use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Sink;

/// How long a buffered line may wait for its write.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Where lines are written. Standard error is buffered: a thread writes the buffer out every
/// [`FLUSH_EVERY`], a warning or an error writes it out at once, and a full buffer too, so a
/// busy gateway makes one `write` for many access lines instead of one each. A sink given by
/// the caller (tests) gets every line at once.
pub(super) struct Output {
    lines: Mutex<BufWriter<Sink>>,
    buffered: bool,
}

impl Output {
    pub(super) fn direct(sink: Sink) -> Self {
        Self { lines: Mutex::new(BufWriter::new(sink)), buffered: false }
    }

    pub(super) fn buffered(sink: Sink) -> Arc<Self> {
        let mut out = Arc::new(Self { lines: Mutex::new(BufWriter::with_capacity(64 * 1024, sink)), buffered: true });
        let flusher = Arc::downgrade(&out);
        let started = std::thread::Builder::new().name("log flush".into()).spawn(move || {
            while let Some(out) = flusher.upgrade() {
                out.flush();
                drop(out);
                std::thread::sleep(FLUSH_EVERY);
            }
        });
        // No thread (its closure, and so the only other reference, is gone): every line is
        // written at once instead, to the same sink.
        if let (Err(_), Some(only)) = (started, Arc::get_mut(&mut out)) {
            only.buffered = false;
        }
        out
    }

    /// Writes `line`; at once when unbuffered or `urgent`. A line that cannot be written has
    /// nowhere else to go.
    pub(super) fn write(&self, line: &[u8], urgent: bool) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let _ = lines.write_all(line);
        if !self.buffered || urgent {
            let _ = lines.flush();
        }
    }

    pub(super) fn flush(&self) {
        let _ = self.lines.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }

    /// Like [`Output::flush`], unless the lines are being written right now (a panic while
    /// writing must not wait for itself).
    pub(super) fn flush_if_free(&self) {
        if let Ok(mut lines) = self.lines.try_lock() {
            let _ = lines.flush();
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A sink whose bytes the test reads back.
    #[derive(Clone, Default)]
    pub(in crate::observe::logging) struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        pub(in crate::observe::logging) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn buffered_lines_wait_for_a_warning() {
        let written = Shared::default();
        // Buffered, without the flusher thread.
        let out = Output { lines: Mutex::new(BufWriter::new(Box::new(written.clone()))), buffered: true };
        out.write(b"access 1\n", false);
        out.write(b"access 2\n", false);
        assert_eq!(written.text(), "");
        out.write(b"warn\n", true);
        assert_eq!(written.text(), "access 1\naccess 2\nwarn\n");
    }

    #[test]
    fn the_flusher_writes_within_its_period_and_direct_output_at_once() {
        let written = Shared::default();
        let out = Output::buffered(Box::new(written.clone()));
        out.write(b"access 1\n", false);
        std::thread::sleep(FLUSH_EVERY * 4);
        assert_eq!(written.text(), "access 1\n");
        out.write(b"access 2\n", false);
        out.flush_if_free();
        assert_eq!(written.text(), "access 1\naccess 2\n");
        let direct = Shared::default();
        Output::direct(Box::new(direct.clone())).write(b"access\n", false);
        assert_eq!(direct.text(), "access\n");
    }
}
