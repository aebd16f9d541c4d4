//! [`Router`] trees of [`ApiMethod`]s and their handlers.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use anyhow::Error;
use http::Method;
use serde_json::Value;

use proxmox_schema::{ObjectSchema, Schema};

use crate::{Permission, RpcEnvironment, SerializableReturn};

/// A synchronous handler: parameters in, a JSON value out. The server runs
/// it where blocking is allowed (file IO, locks).
pub type ApiHandlerFn = &'static (
             dyn Fn(Value, &ApiMethod, &mut dyn RpcEnvironment) -> Result<Value, Error>
                 + Send
                 + Sync
                 + 'static
         );

/// The future of an asynchronous handler.
pub type ApiFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, Error>> + Send + 'a>>;

/// An asynchronous handler: returns a future of a JSON value.
pub type ApiAsyncHandlerFn = &'static (
             dyn for<'a> Fn(Value, &'static ApiMethod, &'a mut dyn RpcEnvironment) -> ApiFuture<'a>
                 + Send
                 + Sync
         );

/// A synchronous handler whose answer serializes itself: the server writes
/// it straight into the response body, with no `serde_json::Value` tree in
/// between (for large answers such as a list of every key).
pub type SerializingApiHandlerFn = &'static (
             dyn Fn(
    Value,
    &ApiMethod,
    &mut dyn RpcEnvironment,
) -> Result<Box<dyn SerializableReturn + Send>, Error>
                 + Send
                 + Sync
                 + 'static
         );

/// The kinds of handler.
pub enum ApiHandler {
    /// See [`ApiHandlerFn`].
    Sync(ApiHandlerFn),
    /// See [`ApiAsyncHandlerFn`].
    Async(ApiAsyncHandlerFn),
    /// See [`SerializingApiHandlerFn`].
    SerializingSync(SerializingApiHandlerFn),
}

impl fmt::Debug for ApiHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiHandler::Sync(_) => "ApiHandler::Sync",
            ApiHandler::Async(_) => "ApiHandler::Async",
            ApiHandler::SerializingSync(_) => "ApiHandler::SerializingSync",
        })
    }
}

/// Who may call a method, and a description for the documentation.
#[derive(Debug)]
pub struct ApiAccess {
    /// What the permission means in words, where the permission alone does
    /// not say it (a list filtered per entry, for example).
    pub description: Option<&'static str>,
    /// The permission checked before the handler runs.
    pub permission: &'static Permission,
}

/// The schema of what a method returns.
#[derive(Debug)]
pub struct ReturnType {
    /// Whether the method may return nothing (`null`).
    pub optional: bool,
    /// The schema of the answer's `data`.
    pub schema: &'static Schema,
}

impl ReturnType {
    /// A return type.
    pub const fn new(optional: bool, schema: &'static Schema) -> Self {
        Self { optional, schema }
    }
}

const NULL_SCHEMA: Schema = Schema::Null;

/// One API method: its parameters, what it returns, who may call it and
/// the handler.
pub struct ApiMethod {
    /// The parameters, path parameters included.
    pub parameters: &'static ObjectSchema,
    /// What the method returns (`null` unless set with
    /// [`ApiMethod::returns`]).
    pub returns: ReturnType,
    /// The handler.
    pub handler: &'static ApiHandler,
    /// The permission (superuser only unless set with [`ApiMethod::access`]).
    pub access: ApiAccess,
}

impl fmt::Debug for ApiMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiMethod")
            .field("parameters", &self.parameters.description)
            .field("returns", &self.returns.schema.description())
            .field("handler", &self.handler)
            .field("permission", &self.access.permission)
            .finish()
    }
}

impl ApiMethod {
    /// A method of `handler` with `parameters`, returning `null`, for the
    /// superuser only: a method that forgets its permission is closed.
    pub const fn new(handler: &'static ApiHandler, parameters: &'static ObjectSchema) -> Self {
        Self {
            parameters,
            returns: ReturnType::new(false, &NULL_SCHEMA),
            handler,
            access: ApiAccess {
                description: None,
                permission: &Permission::Superuser,
            },
        }
    }

    /// Sets the return type.
    pub const fn returns(mut self, returns: ReturnType) -> Self {
        self.returns = returns;
        self
    }

    /// Sets the permission and its description.
    pub const fn access(
        mut self,
        description: Option<&'static str>,
        permission: &'static Permission,
    ) -> Self {
        self.access = ApiAccess {
            description,
            permission,
        };
        self
    }
}

/// Subdirectories of a router: `(name, router)`, sorted by name (checked
/// by [`Router::subdirs`] when the const is evaluated).
pub type SubdirMap = &'static [(&'static str, &'static Router)];

/// Where a router sends paths longer than its own.
#[derive(Debug)]
pub enum SubRoute {
    /// The next component names a subdirectory.
    Map(SubdirMap),
    /// Any next component; it becomes the parameter `param_name`.
    MatchAll {
        /// The router of the rest of the path.
        router: &'static Router,
        /// The parameter the component is stored as.
        param_name: &'static str,
    },
}

/// The methods of one path and the routes below it; built as a `const`
/// with [`Router::new`] and the builders.
///
/// ```
/// use anyhow::Error;
/// use serde_json::Value;
///
/// use proxmox_router::{ApiHandler, ApiMethod, Router, RpcEnvironment};
/// use proxmox_schema::ObjectSchema;
///
/// fn noop(_: Value, _: &ApiMethod, _: &mut dyn RpcEnvironment) -> Result<Value, Error> {
///     Ok(Value::Null)
/// }
/// const NOOP: ApiMethod = ApiMethod::new(&ApiHandler::Sync(&noop), &ObjectSchema::new("", &[]));
///
/// const ITEM_ROUTER: Router = Router::new().get(&NOOP).delete(&NOOP);
/// const KEYS_ROUTER: Router = Router::new().get(&NOOP).match_all("id", &ITEM_ROUTER);
/// const ROUTER: Router = Router::new().subdirs(&[("keys", &KEYS_ROUTER), ("version", &ITEM_ROUTER)]);
///
/// let paths: Vec<String> = ROUTER
///     .endpoints()
///     .iter()
///     .map(|e| format!("{} {}", e.method, e.path))
///     .collect();
/// assert_eq!(paths, ["GET /keys", "GET /keys/{id}", "DELETE /keys/{id}", "GET /version", "DELETE /version"]);
/// ```
///
/// A map that is not sorted does not compile:
///
/// ```compile_fail
/// # use proxmox_router::Router;
/// const A: Router = Router::new();
/// const ROUTER: Router = Router::new().subdirs(&[("b", &A), ("a", &A)]);
/// let _ = &ROUTER;
/// ```
#[derive(Debug)]
pub struct Router {
    /// GET.
    pub get: Option<&'static ApiMethod>,
    /// PUT.
    pub put: Option<&'static ApiMethod>,
    /// POST.
    pub post: Option<&'static ApiMethod>,
    /// DELETE.
    pub delete: Option<&'static ApiMethod>,
    /// Longer paths.
    pub subroute: Option<SubRoute>,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

/// `a < b`, byte-wise, in a const context.
const fn str_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// The HTTP methods a router can have, in the order they are listed.
const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PUT, Method::DELETE];

impl Router {
    /// A router without methods or subroutes.
    pub const fn new() -> Self {
        Self {
            get: None,
            put: None,
            post: None,
            delete: None,
            subroute: None,
        }
    }

    /// Sends longer paths to the subdirectories in `map`, which must be
    /// sorted by name without duplicates (a const that breaks this fails to
    /// compile).
    pub const fn subdirs(mut self, map: SubdirMap) -> Self {
        let mut i = 1;
        while i < map.len() {
            if !str_less(map[i - 1].0, map[i].0) {
                panic!("Router::subdirs: the map must be sorted by name without duplicates");
            }
            i += 1;
        }
        self.subroute = Some(SubRoute::Map(map));
        self
    }

    /// Sends longer paths to `router`, the next component becoming the
    /// parameter `param_name`.
    pub const fn match_all(mut self, param_name: &'static str, router: &'static Router) -> Self {
        self.subroute = Some(SubRoute::MatchAll { router, param_name });
        self
    }

    /// Sets the GET method.
    pub const fn get(mut self, method: &'static ApiMethod) -> Self {
        self.get = Some(method);
        self
    }

    /// Sets the PUT method.
    pub const fn put(mut self, method: &'static ApiMethod) -> Self {
        self.put = Some(method);
        self
    }

    /// Sets the POST method.
    pub const fn post(mut self, method: &'static ApiMethod) -> Self {
        self.post = Some(method);
        self
    }

    /// Sets the DELETE method.
    pub const fn delete(mut self, method: &'static ApiMethod) -> Self {
        self.delete = Some(method);
        self
    }

    /// The router of `components` (the path split at `/`, still
    /// percent-encoded), storing `match_all` components in `uri_param`
    /// (raw, as they appear in the path).
    pub fn find_route(
        &self,
        components: &[&str],
        uri_param: &mut HashMap<String, String>,
    ) -> Option<&Router> {
        let Some((first, rest)) = components.split_first() else {
            return Some(self);
        };
        match &self.subroute {
            None => None,
            Some(SubRoute::Map(map)) => map
                .binary_search_by(|(name, _)| (*name).cmp(first))
                .ok()
                .and_then(|index| map[index].1.find_route(rest, uri_param)),
            Some(SubRoute::MatchAll { router, param_name }) => {
                uri_param.insert(param_name.to_string(), first.to_string());
                router.find_route(rest, uri_param)
            }
        }
    }

    /// The method for `method` of the router of `components`.
    pub fn find_method(
        &self,
        components: &[&str],
        method: Method,
        uri_param: &mut HashMap<String, String>,
    ) -> Option<&ApiMethod> {
        self.find_route(components, uri_param)?.method(&method)
    }

    /// This router's method for `method` (GET, POST, PUT or DELETE).
    pub fn method(&self, method: &Method) -> Option<&'static ApiMethod> {
        match *method {
            Method::GET => self.get,
            Method::POST => self.post,
            Method::PUT => self.put,
            Method::DELETE => self.delete,
            _ => None,
        }
    }

    /// The HTTP methods this router has, in the order GET, POST, PUT,
    /// DELETE.
    pub fn allowed_methods(&self) -> Vec<Method> {
        METHODS
            .into_iter()
            .filter(|method| self.method(method).is_some())
            .collect()
    }

    /// Every method of this router and of the routers below it, depth
    /// first (subdirectories in name order), paths relative to this
    /// router with `match_all` components as `{param}`.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let mut out = Vec::new();
        self.collect_endpoints(String::new(), &mut out);
        out
    }

    fn collect_endpoints(&self, path: String, out: &mut Vec<Endpoint>) {
        for method in self.allowed_methods() {
            let api_method = self.method(&method).expect("an allowed method");
            out.push(Endpoint {
                path: if path.is_empty() {
                    "/".to_string()
                } else {
                    path.clone()
                },
                method,
                api_method,
            });
        }
        match &self.subroute {
            None => {}
            Some(SubRoute::Map(map)) => {
                for (name, router) in map.iter() {
                    router.collect_endpoints(format!("{path}/{name}"), out);
                }
            }
            Some(SubRoute::MatchAll { router, param_name }) => {
                router.collect_endpoints(format!("{path}/{{{param_name}}}"), out);
            }
        }
    }
}

/// One method of a router tree, from [`Router::endpoints`].
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The path below the tree's root, `match_all` components as
    /// `{param}`: `/config/encryption-keys/{id}`.
    pub path: String,
    /// The HTTP method.
    pub method: Method,
    /// The API method.
    pub api_method: &'static ApiMethod,
}

impl Endpoint {
    /// The names of the path's `{param}` components, in order.
    pub fn path_params(&self) -> Vec<&str> {
        self.path
            .split('/')
            .filter_map(|c| c.strip_prefix('{').and_then(|c| c.strip_suffix('}')))
            .collect()
    }

    /// Whether `components` (a concrete path split at `/`) is a path of
    /// this endpoint.
    pub fn matches(&self, components: &[&str]) -> bool {
        let own: Vec<&str> = self.path.split('/').filter(|c| !c.is_empty()).collect();
        own.len() == components.len()
            && own
                .iter()
                .zip(components)
                .all(|(own, given)| own.starts_with('{') || own == given)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn echo(param: Value, _: &ApiMethod, _: &mut dyn RpcEnvironment) -> Result<Value, Error> {
        Ok(param)
    }

    const PARAMS: ObjectSchema = ObjectSchema::new("Nothing.", &[]);
    const ECHO: ApiMethod = ApiMethod::new(&ApiHandler::Sync(&echo), &PARAMS);
    const OPEN: ApiMethod =
        ApiMethod::new(&ApiHandler::Sync(&echo), &PARAMS).access(None, &Permission::World);

    const ITEM: Router = Router::new().get(&ECHO).put(&ECHO).delete(&ECHO);
    const VERIFY: Router = Router::new().get(&OPEN);
    const DEEP_ITEM: Router = Router::new().post(&ECHO).subdirs(&[("verify", &VERIFY)]);
    const LIST: Router = Router::new().get(&ECHO).post(&ECHO).match_all("id", &ITEM);
    const DEEP: Router = Router::new().match_all("name", &DEEP_ITEM);
    const ROOT: Router = Router::new().subdirs(&[("deep", &DEEP), ("keys", &LIST)]);

    fn find<'a>(path: &str, params: &mut HashMap<String, String>) -> Option<&'a Router> {
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        ROOT.find_route(&components, params)
    }

    #[test]
    fn paths_find_their_router_and_parameters_raw() {
        let mut params = HashMap::new();
        let item = find("/keys/a%2Fb", &mut params).unwrap();
        assert_eq!(
            item.allowed_methods(),
            [Method::GET, Method::PUT, Method::DELETE]
        );
        assert_eq!(params["id"], "a%2Fb");

        let mut params = HashMap::new();
        let verify = find("/deep/x-1/verify", &mut params).unwrap();
        assert_eq!(verify.allowed_methods(), [Method::GET]);
        assert!(matches!(
            verify.method(&Method::GET).unwrap().access.permission,
            Permission::World
        ));
        assert_eq!(params["name"], "x-1");

        let mut params = HashMap::new();
        for missing in [
            "/nope",
            "/keys/a/b",
            "/deep/x/other",
            "/keys%2Fa",
            "/deep/x/verify/y",
        ] {
            assert!(find(missing, &mut params).is_none(), "{missing}");
        }
        // the root has no methods, but it is a router
        assert!(find("/", &mut params).unwrap().allowed_methods().is_empty());
        let mut params = HashMap::new();
        assert!(
            ROOT.find_method(&["keys"], Method::POST, &mut params)
                .is_some()
        );
        assert!(
            ROOT.find_method(&["keys"], Method::PUT, &mut params)
                .is_none()
        );
        assert!(
            ROOT.find_method(&["keys"], Method::HEAD, &mut params)
                .is_none()
        );
    }

    #[test]
    fn methods_are_closed_unless_they_say_otherwise() {
        assert!(matches!(ECHO.access.permission, Permission::Superuser));
        assert!(ECHO.access.description.is_none());
        assert!(matches!(ECHO.returns.schema, Schema::Null));
        let mut env = crate::rpc_environment::tests::TestEnvironment::default();
        let ApiHandler::Sync(handler) = ECHO.handler else {
            panic!("a sync handler");
        };
        assert_eq!(
            handler(json!({"a": 1}), &ECHO, &mut env).unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn endpoints_list_every_method_with_its_path() {
        let listed: Vec<String> = ROOT
            .endpoints()
            .iter()
            .map(|e| format!("{} {}", e.method, e.path))
            .collect();
        assert_eq!(
            listed,
            [
                "POST /deep/{name}",
                "GET /deep/{name}/verify",
                "GET /keys",
                "POST /keys",
                "GET /keys/{id}",
                "PUT /keys/{id}",
                "DELETE /keys/{id}",
            ]
        );
        let verify = &ROOT.endpoints()[1];
        assert_eq!(verify.path_params(), ["name"]);
        assert!(verify.matches(&["deep", "k%20", "verify"]));
        assert!(!verify.matches(&["deep", "k", "verify", "x"]));
        assert!(!verify.matches(&["keys", "k", "verify"]));
        assert_eq!(
            Router::new().get(&ECHO).endpoints()[0].path,
            "/",
            "a root method's path"
        );
    }
}
