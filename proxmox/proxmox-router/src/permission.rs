//! Declared permissions and how they are checked.

use std::collections::HashMap;
use std::fmt;

/// Who may call a method.
pub enum Permission {
    /// The superuser only (the default of [`ApiMethod`](crate::ApiMethod)).
    Superuser,
    /// Everyone, without authentication.
    World,
    /// Any authenticated id.
    Anybody,
    /// Privileges on an ACL path: the path's components (`"{param}"` is
    /// replaced by that path parameter of the request), the privilege bits,
    /// and whether any one of them is enough (`true`) or all are needed.
    Privilege(&'static [&'static str], u64, bool),
    /// Every one of these.
    And(&'static [&'static Permission]),
    /// At least one of these.
    Or(&'static [&'static Permission]),
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Superuser => f.write_str("Superuser"),
            Permission::World => f.write_str("World"),
            Permission::Anybody => f.write_str("Anybody"),
            Permission::Privilege(path, privs, partial) => {
                write!(f, "Privilege({path:?}, {privs:#b}, {partial})")
            }
            Permission::And(list) => f.debug_tuple("And").field(list).finish(),
            Permission::Or(list) => f.debug_tuple("Or").field(list).finish(),
        }
    }
}

/// What a permission check needs to know about users.
pub trait UserInformation {
    /// Whether `userid` is the superuser (who passes every check).
    fn is_superuser(&self, userid: &str) -> bool;
    /// The privilege bits of `userid` on the ACL path `path` (components).
    fn lookup_privs(&self, userid: &str, path: &[&str]) -> u64;
}

/// Why a permission check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionDenial {
    /// Nobody is authenticated, and the permission is not
    /// [`Permission::World`].
    Unauthenticated,
    /// Only the superuser may.
    SuperuserOnly,
    /// A `{param}` of a privilege path is not a parameter of the request.
    MissingParameter(String),
    /// Privileges are missing on an ACL path.
    Privileges {
        /// The ACL path, parameters filled in: `/system/encryption-keys/k1`.
        path: String,
        /// The missing privilege bits (with `partial`, all the bits asked
        /// for, any one of which would do).
        missing: u64,
        /// Whether any one of `missing` would have been enough.
        partial: bool,
    },
    /// Every alternative of [`Permission::Or`] failed; why, in order.
    NoneOf(Vec<PermissionDenial>),
}

/// Whether `userid` (`None`: not authenticated) may call a method with
/// `perm`, given the request's path parameters `param`. The superuser
/// passes every check.
pub fn check_api_permission(
    perm: &Permission,
    userid: Option<&str>,
    param: &HashMap<String, String>,
    info: &dyn UserInformation,
) -> bool {
    explain_api_permission(perm, userid, param, info).is_ok()
}

/// [`check_api_permission`], saying why it refuses.
///
/// # Errors
///
/// The first reason found ([`Permission::And`] stops at its first failing
/// part; [`Permission::Or`] collects every part's reason).
pub fn explain_api_permission(
    perm: &Permission,
    userid: Option<&str>,
    param: &HashMap<String, String>,
    info: &dyn UserInformation,
) -> Result<(), PermissionDenial> {
    if let Some(userid) = userid
        && info.is_superuser(userid)
    {
        return Ok(());
    }
    check(perm, userid, param, info)
}

fn check(
    perm: &Permission,
    userid: Option<&str>,
    param: &HashMap<String, String>,
    info: &dyn UserInformation,
) -> Result<(), PermissionDenial> {
    if matches!(perm, Permission::World) {
        return Ok(());
    }
    let Some(userid) = userid else {
        return Err(PermissionDenial::Unauthenticated);
    };
    match perm {
        Permission::World | Permission::Anybody => Ok(()),
        Permission::Superuser => Err(PermissionDenial::SuperuserOnly),
        Permission::Privilege(template, expected, partial) => {
            let mut path = Vec::with_capacity(template.len());
            for component in template.iter() {
                match component
                    .strip_prefix('{')
                    .and_then(|c| c.strip_suffix('}'))
                {
                    Some(name) => match param.get(name) {
                        Some(value) => path.push(value.as_str()),
                        None => return Err(PermissionDenial::MissingParameter(name.to_string())),
                    },
                    None => path.push(component),
                }
            }
            let privs = info.lookup_privs(userid, &path);
            let granted = if *partial {
                privs & expected != 0
            } else {
                privs & expected == *expected
            };
            if granted {
                return Ok(());
            }
            Err(PermissionDenial::Privileges {
                path: format!("/{}", path.join("/")),
                missing: if *partial {
                    *expected
                } else {
                    expected & !privs
                },
                partial: *partial,
            })
        }
        Permission::And(list) => list
            .iter()
            .try_for_each(|part| check(part, Some(userid), param, info)),
        Permission::Or(list) => {
            let mut reasons = Vec::with_capacity(list.len());
            for part in list.iter() {
                match check(part, Some(userid), param, info) {
                    Ok(()) => return Ok(()),
                    Err(reason) => reasons.push(reason),
                }
            }
            Err(PermissionDenial::NoneOf(reasons))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `root` is the superuser; `user1` holds 0b01 on `/store/foo` and 0b10
    /// on `/`; `user2` holds 0b11 on `/store`.
    struct Users;

    impl UserInformation for Users {
        fn is_superuser(&self, userid: &str) -> bool {
            userid == "root"
        }

        fn lookup_privs(&self, userid: &str, path: &[&str]) -> u64 {
            match (userid, path) {
                ("user1", ["store", "foo"]) => 0b01,
                ("user1", []) => 0b10,
                ("user2", ["store"]) => 0b11,
                _ => 0,
            }
        }
    }

    fn explain(perm: &Permission, userid: Option<&str>) -> Result<(), PermissionDenial> {
        let param = HashMap::from([("name".to_string(), "foo".to_string())]);
        let result = explain_api_permission(perm, userid, &param, &Users);
        assert_eq!(
            result.is_ok(),
            check_api_permission(perm, userid, &param, &Users)
        );
        result
    }

    #[test]
    fn world_anybody_and_superuser() {
        for who in [None, Some("user1"), Some("root")] {
            assert!(explain(&Permission::World, who).is_ok());
        }
        assert_eq!(
            explain(&Permission::Anybody, None),
            Err(PermissionDenial::Unauthenticated)
        );
        assert!(explain(&Permission::Anybody, Some("user1")).is_ok());
        assert!(explain(&Permission::Superuser, Some("root")).is_ok());
        assert_eq!(
            explain(&Permission::Superuser, Some("user2")),
            Err(PermissionDenial::SuperuserOnly)
        );
        assert_eq!(
            explain(&Permission::Superuser, None),
            Err(PermissionDenial::Unauthenticated)
        );
    }

    #[test]
    fn privileges_fill_in_path_parameters() {
        const FOO: Permission = Permission::Privilege(&["store", "{name}"], 0b01, false);
        const BOTH: Permission = Permission::Privilege(&["store", "{name}"], 0b11, false);
        const EITHER: Permission = Permission::Privilege(&["store", "{name}"], 0b11, true);
        const OTHER: Permission = Permission::Privilege(&["store", "{other}"], 0b01, false);
        assert!(explain(&FOO, Some("user1")).is_ok());
        assert!(explain(&FOO, Some("root")).is_ok());
        assert_eq!(
            explain(&BOTH, Some("user1")),
            Err(PermissionDenial::Privileges {
                path: "/store/foo".into(),
                missing: 0b10,
                partial: false
            })
        );
        assert!(explain(&EITHER, Some("user1")).is_ok());
        assert_eq!(
            explain(&EITHER, Some("user2")),
            Err(PermissionDenial::Privileges {
                path: "/store/foo".into(),
                missing: 0b11,
                partial: true
            })
        );
        assert_eq!(
            explain(&OTHER, Some("user1")),
            Err(PermissionDenial::MissingParameter("other".into()))
        );
        assert_eq!(explain(&FOO, None), Err(PermissionDenial::Unauthenticated));
        assert!(explain(&Permission::Privilege(&[], 0b10, false), Some("user1")).is_ok());
        assert!(
            explain(
                &Permission::Privilege(&["store"], 0b11, false),
                Some("user2")
            )
            .is_ok()
        );
    }

    #[test]
    fn and_needs_every_part_or_needs_one() {
        const ROOT_PRIV: Permission = Permission::Privilege(&[], 0b10, false);
        const STORE: Permission = Permission::Privilege(&["store"], 0b01, false);
        const AND: Permission = Permission::And(&[&Permission::Anybody, &ROOT_PRIV]);
        const OR: Permission = Permission::Or(&[&STORE, &ROOT_PRIV]);
        assert!(explain(&AND, Some("user1")).is_ok());
        assert_eq!(
            explain(&AND, Some("user2")),
            Err(PermissionDenial::Privileges {
                path: "/".into(),
                missing: 0b10,
                partial: false
            })
        );
        assert!(explain(&OR, Some("user1")).is_ok());
        assert!(explain(&OR, Some("user2")).is_ok());
        let Err(PermissionDenial::NoneOf(reasons)) = explain(&OR, Some("user3")) else {
            panic!("user3 holds nothing");
        };
        assert_eq!(reasons.len(), 2);
        assert_eq!(explain(&OR, None), Err(PermissionDenial::Unauthenticated));
    }
}
