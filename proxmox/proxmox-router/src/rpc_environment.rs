//! [`RpcEnvironment`]: what a handler knows about the call it serves.

use std::any::Any;
use std::net::SocketAddr;

use serde_json::Value;

/// Reaches the concrete environment behind a `dyn RpcEnvironment`:
/// `(*rpcenv).as_any().downcast_ref::<MyEnvironment>()` (through the
/// `dyn`, not the reference to it, which is not `'static`).
pub trait AsAny {
    /// `self` as [`Any`].
    fn as_any(&self) -> &(dyn Any + Send);
}

impl<T: Any + Send> AsAny for T {
    fn as_any(&self) -> &(dyn Any + Send) {
        self
    }
}

/// Where a handler runs: who called it, from where, and extra attributes of
/// its answer (`rpcenv["digest"] = ...` puts `"digest"` beside `"data"`).
pub trait RpcEnvironment: Any + AsAny + Send {
    /// The result attributes (an object), mutable.
    fn result_attrib_mut(&mut self) -> &mut Value;

    /// The result attributes (an object).
    fn result_attrib(&self) -> &Value;

    /// The kind of environment.
    fn env_type(&self) -> RpcEnvironmentType;

    /// Sets the authenticated id (a login sets the id it authenticated).
    fn set_auth_id(&mut self, auth_id: Option<String>);

    /// The authenticated id (`user@realm` or `user@realm!token`), if any.
    fn get_auth_id(&self) -> Option<String>;

    /// Sets the client's address.
    fn set_client_ip(&mut self, _client_ip: Option<SocketAddr>) {}

    /// The client's address, where there is a client (not on the command
    /// line).
    fn get_client_ip(&self) -> Option<SocketAddr> {
        None
    }
}

/// The kinds of environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcEnvironmentType {
    /// The command line.
    CLI,
    /// A server open to the public, running unprivileged.
    PUBLIC,
    /// A server running as root.
    PRIVILEGED,
}

impl core::ops::Index<&str> for dyn RpcEnvironment {
    type Output = Value;
    fn index(&self, index: &str) -> &Value {
        self.result_attrib().index(index)
    }
}

impl core::ops::IndexMut<&str> for dyn RpcEnvironment {
    fn index_mut(&mut self, index: &str) -> &mut Value {
        self.result_attrib_mut().index_mut(index)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A command-line environment for the tests.
    pub struct TestEnvironment {
        attributes: Value,
        auth_id: Option<String>,
    }

    impl Default for TestEnvironment {
        fn default() -> Self {
            Self {
                attributes: Value::Object(Default::default()),
                auth_id: None,
            }
        }
    }

    impl RpcEnvironment for TestEnvironment {
        fn result_attrib_mut(&mut self) -> &mut Value {
            &mut self.attributes
        }
        fn result_attrib(&self) -> &Value {
            &self.attributes
        }
        fn env_type(&self) -> RpcEnvironmentType {
            RpcEnvironmentType::CLI
        }
        fn set_auth_id(&mut self, auth_id: Option<String>) {
            self.auth_id = auth_id;
        }
        fn get_auth_id(&self) -> Option<String> {
            self.auth_id.clone()
        }
    }

    #[test]
    fn attributes_index_and_downcast() {
        let mut env = TestEnvironment::default();
        let rpcenv: &mut dyn RpcEnvironment = &mut env;
        rpcenv["digest"] = "abc".into();
        assert_eq!(rpcenv["digest"], "abc");
        assert_eq!(rpcenv["other"], Value::Null);
        rpcenv.set_auth_id(Some("root@pam".into()));
        assert_eq!(rpcenv.get_client_ip(), None);
        assert_eq!(rpcenv.env_type(), RpcEnvironmentType::CLI);
        let concrete = (*rpcenv)
            .as_any()
            .downcast_ref::<TestEnvironment>()
            .expect("the concrete environment");
        assert_eq!(concrete.auth_id.as_deref(), Some("root@pam"));
        assert_eq!(env.attributes, serde_json::json!({"digest": "abc"}));
    }
}
