//! GET_ROUTEINFO_BY_TOPIC (105).

use super::{CommandHeader, Fields, RequestHeader};
use crate::code::RequestCode;
use crate::error::HeaderError;
use crate::map::StringMap;

/// `GetRouteInfoRequestHeader`: asks a name server for a topic's route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetRouteInfoRequestHeader {
    /// The topic.
    pub topic: String,
    /// Ask for standard JSON whatever the request version (name servers 4.9.4+). rmq sets it to `true`.
    pub accept_standard_json_only: Option<bool>,
}

impl GetRouteInfoRequestHeader {
    /// A request for `topic` that asks for standard JSON.
    pub fn new(topic: impl Into<String>) -> Self {
        GetRouteInfoRequestHeader {
            topic: topic.into(),
            accept_standard_json_only: Some(true),
        }
    }
}

impl CommandHeader for GetRouteInfoRequestHeader {
    fn write_fields(&self, ext: &mut StringMap) {
        ext.insert("topic", &self.topic);
        if let Some(b) = self.accept_standard_json_only {
            ext.insert_bool("acceptStandardJsonOnly", b);
        }
    }

    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError> {
        let f = Fields::new(ext, "GetRouteInfoRequestHeader");
        Ok(GetRouteInfoRequestHeader {
            topic: f.str("topic")?,
            accept_standard_json_only: f.opt_bool("acceptStandardJsonOnly")?,
        })
    }
}

impl RequestHeader for GetRouteInfoRequestHeader {
    const CODE: RequestCode = RequestCode::GET_ROUTEINFO_BY_TOPIC;
}
