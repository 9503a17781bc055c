//! The emulator's stores: each service area's data and the operations on it alone, held
//! by `State` (`state.rs`). A store imports nothing above it (no state, handler, registry
//! or server; checked by `tools/import_cycles.py`): the stream handles it pushes events
//! to (`conn/`) and the shared leaves (`common/`) only.

pub(crate) mod clientdevices;
pub(crate) mod components;
pub(crate) mod configuration;
pub(crate) mod deployment;
pub(crate) mod faults;
pub(crate) mod iotcore;
pub(crate) mod lifecycle;
pub(crate) mod pubsub;
pub(crate) mod secrets;
pub(crate) mod shadows;
