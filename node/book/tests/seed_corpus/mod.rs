//! The committed fuzz seed corpus (`fuzz/corpus/<target>/seed-*`): checked
//! against what the encoders produce now, and rewritten on demand. Shared by
//! the book's and the codec's `fuzz_seeds` tests; the codec includes this
//! file by path.

use std::path::PathBuf;

/// `fuzz/corpus/<target>` in the repository.
pub fn dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Fails if a committed seed of `target` is missing or differs from
/// `seeds`, naming the command (`package`'s ignored `write_seeds` test) that
/// regenerates them.
pub fn assert_current(target: &str, package: &str, seeds: Vec<(&str, Vec<u8>)>) {
    let regenerate = format!("cargo test -p {package} --test fuzz_seeds -- --ignored");
    for (name, bytes) in seeds {
        let path = dir(target).join(name);
        let committed = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; regenerate with `{regenerate}`", path.display()));
        assert!(
            committed == bytes,
            "{} is stale; regenerate with `{regenerate}`",
            path.display()
        );
    }
}

/// Writes `seeds` into `fuzz/corpus/<target>/`.
pub fn write(target: &str, seeds: Vec<(&str, Vec<u8>)>) {
    std::fs::create_dir_all(dir(target)).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir(target).join(name), bytes).unwrap();
    }
}
