//! ZooKeeper's error codes (`KeeperException.Code`), as sent in reply headers.

/// A ZooKeeper result code. The numeric values are ZooKeeper's wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Everything is OK.
    Ok,
    /// A system error.
    SystemError,
    /// A runtime inconsistency (used for the ops after a failed one in a multi).
    RuntimeInconsistency,
    /// A data inconsistency.
    DataInconsistency,
    /// Connection to the server has been lost.
    ConnectionLoss,
    /// Error while marshalling or unmarshalling data.
    MarshallingError,
    /// Operation is unimplemented.
    Unimplemented,
    /// Operation timeout.
    OperationTimeout,
    /// Invalid arguments.
    BadArguments,
    /// Unknown session (internal).
    UnknownSession,
    /// No quorum of the new config is connected.
    NewConfigNoQuorum,
    /// Another reconfiguration is in progress.
    ReconfigInProgress,
    /// API errors (generic).
    ApiError,
    /// Node does not exist.
    NoNode,
    /// Not authenticated.
    NoAuth,
    /// Version conflict.
    BadVersion,
    /// Ephemeral nodes may not have children.
    NoChildrenForEphemerals,
    /// The node already exists.
    NodeExists,
    /// The node has children.
    NotEmpty,
    /// The session has been expired by the server.
    SessionExpired,
    /// Invalid callback specified.
    InvalidCallback,
    /// Invalid ACL specified.
    InvalidAcl,
    /// Client authentication failed.
    AuthFailed,
    /// Session moved to another server.
    SessionMoved,
    /// State-changing request is passed to a read-only server.
    NotReadOnly,
    /// Attempt to create an ephemeral node on a local session.
    EphemeralOnLocalSession,
    /// No watcher exists for the given path.
    NoWatcher,
    /// Request not completed within the maximum time.
    RequestTimeout,
    /// Reconfig is disabled.
    ReconfigDisabled,
    /// The session was closed because SASL authentication is required.
    SessionClosedRequireSaslAuth,
    /// A quota was exceeded.
    QuotaExceeded,
    /// The operation was throttled.
    ThrottledOp,
}

impl ErrorCode {
    /// The wire value.
    pub fn code(self) -> i32 {
        use ErrorCode::*;
        match self {
            Ok => 0,
            SystemError => -1,
            RuntimeInconsistency => -2,
            DataInconsistency => -3,
            ConnectionLoss => -4,
            MarshallingError => -5,
            Unimplemented => -6,
            OperationTimeout => -7,
            BadArguments => -8,
            UnknownSession => -12,
            NewConfigNoQuorum => -13,
            ReconfigInProgress => -14,
            ApiError => -100,
            NoNode => -101,
            NoAuth => -102,
            BadVersion => -103,
            NoChildrenForEphemerals => -108,
            NodeExists => -110,
            NotEmpty => -111,
            SessionExpired => -112,
            InvalidCallback => -113,
            InvalidAcl => -114,
            AuthFailed => -115,
            SessionMoved => -118,
            NotReadOnly => -119,
            EphemeralOnLocalSession => -120,
            NoWatcher => -121,
            RequestTimeout => -122,
            ReconfigDisabled => -123,
            SessionClosedRequireSaslAuth => -124,
            QuotaExceeded => -125,
            ThrottledOp => -127,
        }
    }

    /// The code for a wire value, if it is one ZooKeeper defines.
    pub fn from_code(code: i32) -> Option<Self> {
        ALL.iter().copied().find(|c| c.code() == code)
    }

    /// ZooKeeper's name for the code, as `KeeperException.Code` prints it in
    /// CamelCase (for example `NoNode`), used by the text protocol.
    pub fn name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Ok => "Ok",
            SystemError => "SystemError",
            RuntimeInconsistency => "RuntimeInconsistency",
            DataInconsistency => "DataInconsistency",
            ConnectionLoss => "ConnectionLoss",
            MarshallingError => "MarshallingError",
            Unimplemented => "Unimplemented",
            OperationTimeout => "OperationTimeout",
            BadArguments => "BadArguments",
            UnknownSession => "UnknownSession",
            NewConfigNoQuorum => "NewConfigNoQuorum",
            ReconfigInProgress => "ReconfigInProgress",
            ApiError => "APIError",
            NoNode => "NoNode",
            NoAuth => "NoAuth",
            BadVersion => "BadVersion",
            NoChildrenForEphemerals => "NoChildrenForEphemerals",
            NodeExists => "NodeExists",
            NotEmpty => "NotEmpty",
            SessionExpired => "SessionExpired",
            InvalidCallback => "InvalidCallback",
            InvalidAcl => "InvalidACL",
            AuthFailed => "AuthFailed",
            SessionMoved => "SessionMoved",
            NotReadOnly => "NotReadOnly",
            EphemeralOnLocalSession => "EphemeralOnLocalSession",
            NoWatcher => "NoWatcher",
            RequestTimeout => "RequestTimeout",
            ReconfigDisabled => "ReconfigDisabled",
            SessionClosedRequireSaslAuth => "SessionClosedRequireSaslAuth",
            QuotaExceeded => "QuotaExceeded",
            ThrottledOp => "ThrottledOp",
        }
    }
}

const ALL: [ErrorCode; 32] = {
    use ErrorCode::*;
    [
        Ok,
        SystemError,
        RuntimeInconsistency,
        DataInconsistency,
        ConnectionLoss,
        MarshallingError,
        Unimplemented,
        OperationTimeout,
        BadArguments,
        UnknownSession,
        NewConfigNoQuorum,
        ReconfigInProgress,
        ApiError,
        NoNode,
        NoAuth,
        BadVersion,
        NoChildrenForEphemerals,
        NodeExists,
        NotEmpty,
        SessionExpired,
        InvalidCallback,
        InvalidAcl,
        AuthFailed,
        SessionMoved,
        NotReadOnly,
        EphemeralOnLocalSession,
        NoWatcher,
        RequestTimeout,
        ReconfigDisabled,
        SessionClosedRequireSaslAuth,
        QuotaExceeded,
        ThrottledOp,
    ]
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        }
        assert_eq!(ErrorCode::from_code(-9999), None);
        assert_eq!(ErrorCode::NoNode.code(), -101);
        assert_eq!(ErrorCode::QuotaExceeded.code(), -125);
    }
}
