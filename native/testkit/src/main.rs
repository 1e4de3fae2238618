//! `candela-fixtures DIR KIND [DTYPE] [CONTEXT]`: writes one tiny test model
//! and prints its path (what the JS tests' `writeTestModel` calls).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(kind)) = (args.first(), args.get(1)) else {
        eprintln!("usage: candela-fixtures DIR KIND [DTYPE=q8_0] [CONTEXT]");
        return ExitCode::from(2);
    };
    let dtype = args.get(2).map(String::as_str).unwrap_or("q8_0");
    let context = match args.get(3).map(|c| c.parse::<usize>()) {
        None => None,
        Some(Ok(0)) => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            eprintln!("candela-fixtures: CONTEXT must be a number: {e}");
            return ExitCode::from(2);
        }
    };
    match candela_testkit::write_named(Path::new(dir), kind, dtype, context) {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("candela-fixtures: {e}");
            ExitCode::FAILURE
        }
    }
}
