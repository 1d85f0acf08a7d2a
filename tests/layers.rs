//! The module graph is the one drawn in ARCHITECTURE.md ("Module layers"): every `crate::x`
//! path in a module points to a strictly lower layer, so the graph is acyclic and nothing
//! imports upward. The pure domain (`core`) names no I/O crate and no file system.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Crates and std modules the pure domain must not touch.
const IO: &[&str] = &[
    "tokio",
    "tonic",
    "rusqlite",
    "tokio_postgres",
    "deadpool_postgres",
    "hyper",
    "axum",
    "std::fs",
    "std::net::Tcp",
    "std::process",
    "std::thread",
];

/// Layer of each top-level module, from the table in ARCHITECTURE.md.
fn layers() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let start = doc
        .find("<!-- module layers -->")
        .expect("ARCHITECTURE.md has the module layer table");
    let mut out = BTreeMap::new();
    for line in doc[start..].lines().skip(1) {
        let line = line.trim();
        if line.starts_with("```") {
            if out.is_empty() {
                continue;
            }
            break;
        }
        let Some((n, modules)) = line.split_once(':') else {
            continue;
        };
        let n: usize = n.trim().parse().expect("layer number");
        for m in modules.split_whitespace() {
            assert!(out.insert(m.to_string(), n).is_none(), "{m} listed twice");
        }
    }
    assert!(out.len() > 10, "layer table parsed: {out:?}");
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to (`src/store/sqlite.rs` -> `store`).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(Path::new(ROOT).join("src")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "bin" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// Code lines: line comments and doc comments dropped.
fn code(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let code = l.split("//").next().unwrap_or("");
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

/// `crate::x` paths of a line, by top-level module name.
fn crate_refs(line: &str) -> Vec<String> {
    line.match_indices("crate::")
        .filter(|(i, _)| {
            // `ecca_crate::` or `my_crate::` are other names.
            *i == 0 || !line[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
        .map(|(i, _)| {
            line[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn modules_import_only_lower_layers() {
    let layers = layers();
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut wrong = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for f in &files {
        let Some(module) = module_of(f) else {
            continue;
        };
        let rank = *layers
            .get(&module)
            .unwrap_or_else(|| panic!("module {module} is missing from ARCHITECTURE.md's layers"));
        seen.insert(module.clone());
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in code(&text) {
            assert!(
                !line.contains("use crate::{"),
                "{}:{n}: grouped crate imports hide the graph; one `use` per module",
                f.display()
            );
            for target in crate_refs(line) {
                if target == module || target.is_empty() {
                    continue;
                }
                // Re-exports at the crate root (`crate::Error`) are the error layer.
                let target = match target.as_str() {
                    "Error" | "Result" => "error".to_string(),
                    t => t.to_string(),
                };
                let to = *layers
                    .get(&target)
                    .unwrap_or_else(|| panic!("{}:{n}: unknown module {target}", f.display()));
                if to >= rank {
                    wrong.push(format!(
                        "{}:{n}: {module} (layer {rank}) uses {target} (layer {to})",
                        f.display()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "upward or sideways imports:\n{}",
        wrong.join("\n")
    );
    let listed: std::collections::BTreeSet<_> = layers.keys().cloned().collect();
    let stale: Vec<_> = listed
        .difference(&seen)
        .filter(|m| !["proto", "kmc_proto"].contains(&m.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "ARCHITECTURE.md lists modules that do not exist: {stale:?}"
    );
}

#[test]
fn core_is_pure() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src/core"), &mut files);
    assert!(files.len() > 10);
    let mut wrong = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in code(&text) {
            for io in IO {
                let hit = line.match_indices(io).any(|(i, _)| {
                    let before = line[..i].chars().last();
                    let after = line[i + io.len()..].chars().next();
                    !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                        && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if hit {
                    wrong.push(format!("{}:{n}: {io}", f.display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "core does I/O:\n{}", wrong.join("\n"));
}

#[test]
fn no_raw_signer_outside_the_signing_module() {
    // Keys live in `signer` (implementations) and are held by `authority::ca` (which signs only
    // through typed, linting methods); `core` signs with what it is handed.
    // The KMC is a component of its own with its own credential CA key (never a CA key of
    // ecca's hierarchies), behind the same lint-first signing functions of `core`.
    let allowed = ["src/authority/", "src/signer/", "src/core/", "src/kmc/"];
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    rust_files(&Path::new(ROOT).join("ops/src"), &mut files);
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(ROOT).unwrap().to_string_lossy().to_string();
        if allowed.iter().any(|a| rel.starts_with(a)) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in code(&text) {
            for needle in [
                "dyn Signer",
                "Signer for",
                "::Signer",
                "Pkcs11Key",
                "sign_linted",
            ] {
                if line.contains(needle) {
                    wrong.push(format!("{rel}:{n}: {needle}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "raw signers outside the signing module:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checks_catch_what_they_claim_to() {
    assert_eq!(crate_refs("use crate::store::Store;"), ["store"]);
    assert_eq!(
        crate_refs("let x = crate::core::fingerprint(&crate::layout::X);"),
        ["core", "layout"]
    );
    assert!(crate_refs("use ecca_crate::x;").is_empty());
    let lines: Vec<_> = code("// crate::store\nlet a = 1; // crate::x\n/// doc crate::y").collect();
    assert_eq!(lines, [(2, "let a = 1; ")]);
}
