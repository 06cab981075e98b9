//! Every bad request gets its specific error code, with its id echoed.

use super::*;

#[track_caller]
fn refused(text: &str, code: ErrorCode, id: Option<Value>) {
    let (got, message, got_id) = parse(text).expect_err("must be refused");
    assert_eq!(got, code, "{message}");
    assert_eq!(got_id, id);
    assert!(!message.is_empty());
}

#[test]
fn requests_parse_with_their_ids() {
    let join =
        parse(r#"{"op":"join","channel":"room-1","meta":{"name":"Ann"},"id":7}"#).expect("valid");
    assert_eq!(
        join,
        Request::Join {
            id: Some(7.into()),
            channel: "room-1".into(),
            meta: Some(serde_json::json!({"name": "Ann"})),
            since: None,
        }
    );
    assert_eq!(join.id(), Some(&Value::from(7)));
    assert!(matches!(
        parse(r#"{"op":"publish","channel":"a/b","data":[1,2]}"#),
        Ok(Request::Publish { .. })
    ));
    assert!(matches!(
        parse(r#"{"op":"presence","channel":"x"}"#),
        Ok(Request::Presence { .. })
    ));
    assert!(matches!(
        parse(r#"{"op":"leave","channel":"x","id":"a"}"#),
        Ok(Request::Leave { .. })
    ));
    assert!(matches!(
        parse(r#"{"op":"set_will","channel":"x","data":"gone"}"#),
        Ok(Request::SetWill { .. })
    ));
    let ping = parse(r#"{"op":"ping","id":3}"#).expect("valid");
    assert_eq!(ping, Request::Ping { id: Some(3.into()) });
    assert_eq!(pong(ping.id()), r#"{"id":3,"type":"pong"}"#);
}

#[test]
fn bad_requests_get_specific_errors() {
    refused("{not json", ErrorCode::MalformedJson, None);
    refused("[1,2]", ErrorCode::MalformedJson, None);
    refused(
        r#"{"op":"dance","id":3}"#,
        ErrorCode::UnknownOp,
        Some(3.into()),
    );
    refused(
        r#"{"op":"join","id":4}"#,
        ErrorCode::UnknownOp,
        Some(4.into()),
    );
    refused(
        r#"{"op":"join","channel":"a","extra":1,"id":5}"#,
        ErrorCode::UnknownOp,
        Some(5.into()),
    );
    refused(
        r#"{"op":"join","channel":"","id":6}"#,
        ErrorCode::InvalidChannel,
        Some(6.into()),
    );
    refused(
        r#"{"op":"join","channel":"a b","id":6}"#,
        ErrorCode::InvalidChannel,
        Some(6.into()),
    );
    let long = format!(
        r#"{{"op":"join","channel":"{}"}}"#,
        "x".repeat(MAX_CHANNEL_LEN + 1)
    );
    refused(&long, ErrorCode::InvalidChannel, None);
}

#[test]
fn errors_and_replies_echo_the_id() {
    let text = error(Some(&Value::from("q1")), ErrorCode::NotJoined, "join first");
    let value: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(value["type"], "error");
    assert_eq!(value["id"], "q1");
    assert_eq!(value["code"], "not_joined");
    let text = reply(Some(&Value::from(2)), serde_json::Map::new());
    let value: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        (value["type"].as_str(), value["id"].as_i64()),
        (Some("reply"), Some(2))
    );
}

#[test]
fn presence_pages_and_stats_parse_and_bad_pages_are_refused() {
    assert_eq!(
        parse(r#"{"op":"presence","channel":"hall","limit":2,"cursor":"bob","id":1}"#)
            .expect("valid"),
        Request::Presence {
            id: Some(1.into()),
            channel: "hall".into(),
            cursor: Some("bob".into()),
            limit: Some(2),
        }
    );
    assert!(matches!(
        parse(r#"{"op":"presence_stats","channel":"hall"}"#),
        Ok(Request::PresenceStats { .. })
    ));
    assert_eq!(page_request(None, None), Ok(None));
    assert_eq!(
        page_request(Some("bob"), None),
        Ok(Some(PageRequest {
            after: Some("bob".into()),
            limit: MAX_PAGE as usize
        }))
    );
    for bad in [
        r#"{"op":"presence","channel":"hall","limit":0,"id":2}"#,
        r#"{"op":"presence","channel":"hall","limit":1001,"id":2}"#,
        r#"{"op":"presence","channel":"hall","cursor":"","id":2}"#,
    ] {
        refused(bad, ErrorCode::InvalidPage, Some(2.into()));
    }
    refused(
        r#"{"op":"presence","channel":"hall","limit":-1,"id":2}"#,
        ErrorCode::UnknownOp,
        Some(2.into()),
    );
    refused(
        r#"{"op":"presence_stats","channel":"a b","id":3}"#,
        ErrorCode::InvalidChannel,
        Some(3.into()),
    );
}

#[test]
fn a_join_may_say_where_it_was_and_history_is_read_in_pages() {
    assert_eq!(
        parse(r#"{"op":"join","channel":"chat","since":{"offset":41,"epoch":"9f3a"}}"#)
            .expect("valid"),
        Request::Join {
            id: None,
            channel: "chat".into(),
            meta: None,
            since: Some(Since {
                offset: 41,
                epoch: "9f3a".into()
            }),
        }
    );
    assert_eq!(
        parse(r#"{"op":"history","channel":"chat","after":3,"limit":100,"id":2}"#).expect("valid"),
        Request::History {
            id: Some(2.into()),
            channel: "chat".into(),
            after: Some(3),
            limit: Some(100),
        }
    );
    let id = Some(Value::from(5));
    for text in [
        r#"{"op":"join","channel":"chat","since":{"offset":-1,"epoch":"a"},"id":5}"#,
        r#"{"op":"join","channel":"chat","since":{"offset":1},"id":5}"#,
        r#"{"op":"join","channel":"chat","since":{"offset":1,"epoch":"a","x":1},"id":5}"#,
    ] {
        refused(text, ErrorCode::UnknownOp, id.clone());
    }
    for text in [
        r#"{"op":"history","channel":"chat","limit":0,"id":5}"#,
        r#"{"op":"history","channel":"chat","limit":101,"id":5}"#,
    ] {
        refused(text, ErrorCode::InvalidPage, id.clone());
    }
    refused(
        r#"{"op":"history","channel":"no spaces","id":5}"#,
        ErrorCode::InvalidChannel,
        id,
    );
}
