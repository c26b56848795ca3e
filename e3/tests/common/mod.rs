//! What E3's root-only integration tests share: the binary under test and the root check.

/// The E3 binary under test.
pub const E3: &str = env!("CARGO_BIN_EXE_e3");

/// False (with a note) when not root: namespaces cannot be made, the test has nothing to do.
/// With E3_REQUIRE_ROOT set (CI) not being root fails the test instead.
pub fn root() -> bool {
    let root = e3::netns::require_root().is_ok();
    if !root {
        assert!(
            std::env::var_os("E3_REQUIRE_ROOT").is_none(),
            "E3_REQUIRE_ROOT is set but this test does not run as root"
        );
        eprintln!("skipped: E3 needs root for network namespaces");
    }
    root
}
