//! External tools the tests judge with (openssl, pkilint, sqlite3, PostgreSQL, SoftHSM2,
//! Python grpcio): a missing one fails the test, unless skipping was asked for explicitly
//! with `ECCA_ALLOW_SKIP=1` (then the test says it skipped). The one place this is decided.
use std::path::PathBuf;

/// True only when the run explicitly allows tests to skip for a missing tool.
pub fn skip_allowed() -> bool {
    std::env::var_os("ECCA_ALLOW_SKIP").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A tool is missing: fails the test, or (with `ECCA_ALLOW_SKIP=1`) says so and returns
/// None so the caller can skip.
pub fn missing<T>(what: &str, hint: &str) -> Option<T> {
    assert!(
        skip_allowed(),
        "{what} is required but not found ({hint}); tests/run.sh installs it, or set ECCA_ALLOW_SKIP=1 to skip"
    );
    eprintln!("skipping: {what} not found (ECCA_ALLOW_SKIP is set)");
    None
}

/// Finds an executable on PATH or in ECCA_TOOLS_DIR.
pub fn tool(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("ECCA_TOOLS_DIR")
        .into_iter()
        .chain(std::env::var_os("PATH"))
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    for d in dirs {
        let candidate = d.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    missing(name, "not on PATH or in ECCA_TOOLS_DIR")
}
