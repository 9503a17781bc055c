//! The emulator's shared leaves: what every layer above may use and that imports nothing
//! else of the emulator (checked by `tools/import_cycles.py`). Texts and topic rules,
//! authorization policies and recipes, the generated operation table and its lookups,
//! the public value types (flavour, scripted replies, errors) and small helpers.

pub(crate) mod auth;
pub(crate) mod clock;
pub(crate) mod errors;
pub(crate) mod facts;
pub(crate) mod flavor;
pub(crate) mod ids;
pub(crate) mod operations;
pub(crate) mod recipe;
pub(crate) mod scripts;
pub(crate) mod texts;
pub(crate) mod topic;
pub(crate) mod wire;
