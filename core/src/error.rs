//! ZooKeeper's error codes (`KeeperException.Code`), as sent in reply headers.

/// Defines the enum, its wire values and ZooKeeper's names in one table.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $v:ident = $code:expr, $name:expr;)*) => {
        /// A ZooKeeper result code. The numeric values are ZooKeeper's wire values.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $v,)*
        }

        impl ErrorCode {
            /// The wire value.
            pub fn code(self) -> i32 {
                match self {
                    $(Self::$v => $code,)*
                }
            }

            /// The code for a wire value, if it is one ZooKeeper defines.
            pub fn from_code(code: i32) -> Option<Self> {
                match code {
                    $($code => Some(Self::$v),)*
                    _ => None,
                }
            }

            /// ZooKeeper's name for the code, as `KeeperException.Code`
            /// prints it in CamelCase (for example `NoNode`), used by the
            /// text protocol.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$v => $name,)*
                }
            }
        }

        #[cfg(test)]
        const ALL: &[ErrorCode] = &[$(ErrorCode::$v,)*];
    };
}

error_codes! {
    /// Everything is OK.
    Ok = 0, "Ok";
    /// A system error.
    SystemError = -1, "SystemError";
    /// A runtime inconsistency (used for the ops after a failed one in a multi).
    RuntimeInconsistency = -2, "RuntimeInconsistency";
    /// A data inconsistency.
    DataInconsistency = -3, "DataInconsistency";
    /// Connection to the server has been lost.
    ConnectionLoss = -4, "ConnectionLoss";
    /// Error while marshalling or unmarshalling data.
    MarshallingError = -5, "MarshallingError";
    /// Operation is unimplemented.
    Unimplemented = -6, "Unimplemented";
    /// Operation timeout.
    OperationTimeout = -7, "OperationTimeout";
    /// Invalid arguments.
    BadArguments = -8, "BadArguments";
    /// Unknown session (internal).
    UnknownSession = -12, "UnknownSession";
    /// No quorum of the new config is connected.
    NewConfigNoQuorum = -13, "NewConfigNoQuorum";
    /// Another reconfiguration is in progress.
    ReconfigInProgress = -14, "ReconfigInProgress";
    /// API errors (generic).
    ApiError = -100, "APIError";
    /// Node does not exist.
    NoNode = -101, "NoNode";
    /// Not authenticated.
    NoAuth = -102, "NoAuth";
    /// Version conflict.
    BadVersion = -103, "BadVersion";
    /// Ephemeral nodes may not have children.
    NoChildrenForEphemerals = -108, "NoChildrenForEphemerals";
    /// The node already exists.
    NodeExists = -110, "NodeExists";
    /// The node has children.
    NotEmpty = -111, "NotEmpty";
    /// The session has been expired by the server.
    SessionExpired = -112, "SessionExpired";
    /// Invalid callback specified.
    InvalidCallback = -113, "InvalidCallback";
    /// Invalid ACL specified.
    InvalidAcl = -114, "InvalidACL";
    /// Client authentication failed.
    AuthFailed = -115, "AuthFailed";
    /// Session moved to another server.
    SessionMoved = -118, "SessionMoved";
    /// State-changing request is passed to a read-only server.
    NotReadOnly = -119, "NotReadOnly";
    /// Attempt to create an ephemeral node on a local session.
    EphemeralOnLocalSession = -120, "EphemeralOnLocalSession";
    /// No watcher exists for the given path.
    NoWatcher = -121, "NoWatcher";
    /// Request not completed within the maximum time.
    RequestTimeout = -122, "RequestTimeout";
    /// Reconfig is disabled.
    ReconfigDisabled = -123, "ReconfigDisabled";
    /// The session was closed because SASL authentication is required.
    SessionClosedRequireSaslAuth = -124, "SessionClosedRequireSaslAuth";
    /// A quota was exceeded.
    QuotaExceeded = -125, "QuotaExceeded";
    /// The operation was throttled.
    ThrottledOp = -127, "ThrottledOp";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for &c in ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        }
        assert_eq!(ErrorCode::from_code(-9999), None);
        assert_eq!(ErrorCode::NoNode.code(), -101);
        assert_eq!(ErrorCode::QuotaExceeded.code(), -125);
    }
}
