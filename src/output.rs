//! Writing to stdout. A reader that goes away (`scaleplan diff | head`) is
//! not an error: scaleplan stops quietly, as other command-line tools do,
//! instead of panicking on a broken pipe.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when stdout carries one document (`--format json` of a command that
/// also reports progress): the progress lines go to stderr instead.
static PROGRESS_TO_STDERR: AtomicBool = AtomicBool::new(false);

pub fn progress_to_stderr() {
    PROGRESS_TO_STDERR.store(true, Ordering::Relaxed);
}

/// Writes a progress line (what `say!` prints): stdout, unless stdout is
/// kept for a document.
pub fn write(text: &str) {
    if PROGRESS_TO_STDERR.load(Ordering::Relaxed) {
        eprint!("{text}");
        return;
    }
    data(text);
}

/// Writes `text` to stdout; exits quietly when the reader has gone.
pub fn data(text: &str) {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            std::process::exit(1);
        }
    }
}

/// `println!` that survives a closed pipe.
#[macro_export]
macro_rules! say {
    () => { $crate::output::write("\n") };
    ($($arg:tt)*) => { $crate::output::write(&format!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that survives a closed pipe.
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => { $crate::output::write(&format!($($arg)*)) };
}
