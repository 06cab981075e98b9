//! Criterion benches for vigil-core live in `benches/`; this library is empty.
