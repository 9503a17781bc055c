//! ggipc: a blocking, runtime-free client for the AWS IoT Greengrass Core IPC service.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod model;
