//! Writing to stdout. A reader that goes away (`scaleplan diff | head`) is
//! not an error: scaleplan stops quietly, as other command-line tools do,
//! instead of panicking on a broken pipe.

use std::io::Write;

/// Writes `text` to stdout; exits quietly when the reader has gone.
pub fn write(text: &str) {
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
