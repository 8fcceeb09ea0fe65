//! END_TRANSACTION (37) and CHECK_TRANSACTION_STATE (39).

use super::{CommandHeader, Fields, RequestHeader, put_opt};
use crate::code::RequestCode;
use crate::error::HeaderError;
use crate::map::StringMap;

/// How a half message ends: the `commitOrRollback` values (sysFlag transaction types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionResolution {
    /// State unknown (0): the broker ignores it and checks back later.
    Unknown,
    /// Commit (8).
    Commit,
    /// Roll back (12).
    Rollback,
}

impl TransactionResolution {
    /// The wire value.
    pub fn code(self) -> i32 {
        match self {
            TransactionResolution::Unknown => 0,
            TransactionResolution::Commit => 8,
            TransactionResolution::Rollback => 12,
        }
    }

    /// The resolution for a wire value; only 0, 8 and 12 are valid.
    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            0 => Some(TransactionResolution::Unknown),
            8 => Some(TransactionResolution::Commit),
            12 => Some(TransactionResolution::Rollback),
            _ => None,
        }
    }
}

/// `EndTransactionRequestHeader`, sent oneway to the broker that stored the half message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndTransactionRequestHeader {
    /// Topic of the half message.
    pub topic: Option<String>,
    /// The producer group (must match the half message's `PGROUP`).
    pub producer_group: String,
    /// The half message's queue offset.
    pub tran_state_table_offset: i64,
    /// The half message's commit-log offset (from its offset msgId).
    pub commit_log_offset: i64,
    /// Commit, roll back or unknown.
    pub commit_or_rollback: TransactionResolution,
    /// Whether this answers a broker check.
    pub from_transaction_check: bool,
    /// The message's UNIQ_KEY.
    pub msg_id: String,
    /// The transaction id.
    pub transaction_id: Option<String>,
    /// The broker name (`bname`).
    pub broker_name: Option<String>,
}

impl CommandHeader for EndTransactionRequestHeader {
    fn write_fields(&self, ext: &mut StringMap) {
        put_opt(ext, "topic", self.topic.as_deref());
        ext.insert("producerGroup", &self.producer_group);
        ext.insert_int("tranStateTableOffset", self.tran_state_table_offset);
        ext.insert_int("commitLogOffset", self.commit_log_offset);
        ext.insert_int("commitOrRollback", self.commit_or_rollback.code().into());
        ext.insert_bool("fromTransactionCheck", self.from_transaction_check);
        ext.insert("msgId", &self.msg_id);
        put_opt(ext, "transactionId", self.transaction_id.as_deref());
        put_opt(ext, "bname", self.broker_name.as_deref());
    }

    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError> {
        const H: &str = "EndTransactionRequestHeader";
        let f = Fields::new(ext, H);
        let code = f.i32("commitOrRollback")?;
        Ok(EndTransactionRequestHeader {
            topic: f.opt_str("topic"),
            producer_group: f.str("producerGroup")?,
            tran_state_table_offset: f.i64("tranStateTableOffset")?,
            commit_log_offset: f.i64("commitLogOffset")?,
            commit_or_rollback: TransactionResolution::from_code(code).ok_or_else(|| {
                HeaderError::Invalid {
                    header: H,
                    field: "commitOrRollback",
                    value: code.to_string(),
                    expected: "transaction type (0, 8 or 12)",
                }
            })?,
            from_transaction_check: f.opt_bool("fromTransactionCheck")?.unwrap_or(false),
            msg_id: f.str("msgId")?,
            transaction_id: f.opt_str("transactionId"),
            broker_name: f.opt_str("bname"),
        })
    }
}

impl RequestHeader for EndTransactionRequestHeader {
    const CODE: RequestCode = RequestCode::END_TRANSACTION;
}

/// `CheckTransactionStateRequestHeader`: a broker asks the producer about a half message. The body is the
/// half message in store format ([`crate::decode_store_message`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckTransactionStateRequestHeader {
    /// Topic.
    pub topic: Option<String>,
    /// The half message's queue offset.
    pub tran_state_table_offset: i64,
    /// The half message's commit-log offset.
    pub commit_log_offset: i64,
    /// The message's UNIQ_KEY.
    pub msg_id: Option<String>,
    /// The transaction id.
    pub transaction_id: Option<String>,
    /// The offset msgId.
    pub offset_msg_id: Option<String>,
    /// The broker name (`bname`).
    pub broker_name: Option<String>,
}

impl CommandHeader for CheckTransactionStateRequestHeader {
    fn write_fields(&self, ext: &mut StringMap) {
        put_opt(ext, "topic", self.topic.as_deref());
        ext.insert_int("tranStateTableOffset", self.tran_state_table_offset);
        ext.insert_int("commitLogOffset", self.commit_log_offset);
        put_opt(ext, "msgId", self.msg_id.as_deref());
        put_opt(ext, "transactionId", self.transaction_id.as_deref());
        put_opt(ext, "offsetMsgId", self.offset_msg_id.as_deref());
        put_opt(ext, "bname", self.broker_name.as_deref());
    }

    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError> {
        let f = Fields::new(ext, "CheckTransactionStateRequestHeader");
        Ok(CheckTransactionStateRequestHeader {
            topic: f.opt_str("topic"),
            tran_state_table_offset: f.i64("tranStateTableOffset")?,
            commit_log_offset: f.i64("commitLogOffset")?,
            msg_id: f.opt_str("msgId"),
            transaction_id: f.opt_str("transactionId"),
            offset_msg_id: f.opt_str("offsetMsgId"),
            broker_name: f.opt_str("bname"),
        })
    }
}

impl RequestHeader for CheckTransactionStateRequestHeader {
    const CODE: RequestCode = RequestCode::CHECK_TRANSACTION_STATE;
}
