//! API routes as data, mirroring the `proxmox-router` crate of proxmox-rs.
//!
//! A REST API is a tree of `const` [`Router`]s. Each router answers one
//! path with up to four [`ApiMethod`]s (GET, POST, PUT, DELETE) and hands
//! longer paths to a map of named subdirectories ([`Router::subdirs`]) or
//! to one router that matches any component and records it as a path
//! parameter ([`Router::match_all`]). An [`ApiMethod`] carries its
//! parameter schema, its return schema, its [`Permission`] and its
//! [`ApiHandler`], so everything a server, a documentation generator or a
//! test needs to know about a route is declared once, beside the handler:
//!
//! ```
//! use anyhow::Error;
//! use serde_json::{Value, json};
//!
//! use proxmox_router::{ApiHandler, ApiMethod, Permission, Router, RpcEnvironment};
//! use proxmox_schema::ObjectSchema;
//!
//! fn hello(_param: Value, _method: &ApiMethod, rpcenv: &mut dyn RpcEnvironment) -> Result<Value, Error> {
//!     Ok(json!(format!("hello {}", rpcenv.get_auth_id().unwrap_or_default())))
//! }
//!
//! const API_METHOD_HELLO: ApiMethod = ApiMethod::new(
//!     &ApiHandler::Sync(&hello),
//!     &ObjectSchema::new("Say hello.", &[]),
//! )
//! .access(None, &Permission::Anybody);
//!
//! const ROUTER: Router = Router::new().get(&API_METHOD_HELLO);
//!
//! // a method that states no permission is for the superuser only
//! const CLOSED: ApiMethod = ApiMethod::new(&ApiHandler::Sync(&hello), &ObjectSchema::new("", &[]));
//! assert!(matches!(CLOSED.access.permission, Permission::Superuser));
//! # let _ = ROUTER;
//! ```
//!
//! Mirrored from upstream, with its names and shapes: [`Router`] with its
//! `const fn` builders `get`, `put`, `post`, `delete`, `subdirs` and
//! `match_all`, [`SubRoute`], [`SubdirMap`], `find_route` and
//! `find_method`; [`ApiMethod`] (`new`, `returns`, `access`) with
//! [`ApiAccess`] and [`ReturnType`]; [`ApiHandler::Sync`],
//! [`ApiHandler::Async`] and [`ApiHandler::SerializingSync`] (its handler
//! returns a [`SerializableReturn`] that the server serializes straight
//! into the response body, so a large answer never becomes a tree of
//! `serde_json::Value`s); [`Permission`] (`Superuser`, `World`, `Anybody`,
//! `Privilege` with `{param}` path templates, `And`, `Or`),
//! [`UserInformation`] and [`check_api_permission`], with upstream's rule
//! that the superuser passes every check; [`RpcEnvironment`] (result
//! attributes such as `digest`, the auth id, the client address, indexing
//! with `rpcenv["digest"]`), [`RpcEnvironmentType`] and [`AsAny`].
//!
//! Beyond upstream (upstream's servers and doc generators walk the tree
//! with their own code):
//! - [`Router::method`] and [`Router::allowed_methods`]: the method of a
//!   router for an HTTP method, and the methods it has (for 405 and its
//!   `Allow` header);
//! - [`Router::endpoints`]: every (path, HTTP method, [`ApiMethod`]) of a
//!   tree, for documentation and tests;
//! - [`explain_api_permission`]: why [`check_api_permission`] refuses
//!   ([`PermissionDenial`]), so a 403 can name the missing privilege;
//! - [`Router::subdirs`] checks at compile time that the map is sorted (upstream
//!   relies on a `sorted!` macro);
//! - [`Router::find_route`] keeps path components as they are, still
//!   percent-encoded: names compare with the raw component and a
//!   `match_all` parameter holds the raw text, which the caller decodes
//!   (upstream decodes first and treats a component that is not UTF-8 as
//!   "not found"; here the server can answer it as a bad parameter);
//! - [`ReturnType`] lives here (upstream: `proxmox-schema`), and `parameters`
//!   is an [`ObjectSchema`](proxmox_schema::ObjectSchema) (upstream: a
//!   `ParameterSchema` that also allows all-of schemas).
//!
//! Left out: the `#[api]` macro and `list_subdirs_api_method!`, the
//! `AsyncHttp`, `SerializingAsync` and streaming handlers, upload,
//! download and upgrade routes, `protected` and `reload_timezone`, the
//! permissions `User`, `UserParam`, `Group` and `WithParam`, the command
//! line half (`cli`), `format` (documentation output) and `HttpError`
//! (the server keeps its own).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod permission;
mod router;
mod rpc_environment;
mod serializable_return;

pub use permission::{
    Permission, PermissionDenial, UserInformation, check_api_permission, explain_api_permission,
};
pub use router::{
    ApiAccess, ApiAsyncHandlerFn, ApiFuture, ApiHandler, ApiHandlerFn, ApiMethod, Endpoint,
    ReturnType, Router, SerializingApiHandlerFn, SubRoute, SubdirMap,
};
pub use rpc_environment::{AsAny, RpcEnvironment, RpcEnvironmentType};
pub use serializable_return::SerializableReturn;
