use super::*;

#[test]
fn embedded_default_is_a_local_demo() {
    let cfg = Config::embedded_default();
    cfg.validate().expect("embedded default validates");
    assert_eq!(cfg.http.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(cfg.sip.listen_udp, Some("127.0.0.1:5060".parse().unwrap()));
    assert_eq!(cfg.queues.len(), 2);
    assert!(!cfg.agents.is_empty());
}

#[test]
fn example_file_documents_a_valid_config() {
    let text = include_str!("../../clicktocall.example.toml");
    let cfg = Config::from_toml(text).expect("example parses");
    cfg.validate().expect("example validates");
}

#[test]
fn wrong_type_names_the_key() {
    let err = Config::from_toml("[sip]\nmax_message_bytes = \"big\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("sip.max_message_bytes:"), "{msg}");
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn unknown_key_names_the_key() {
    let err = Config::from_toml("[registrar]\nmin_expire = 30\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("min_expire"), "{msg}");
    assert!(msg.contains("unknown field"), "{msg}");
}

#[test]
fn unknown_key_in_an_array_of_tables_names_its_index() {
    let err = Config::from_toml("[[queues]]\nname = \"a\"\n[[queues]]\nname = \"b\"\ncolour = 1\n")
        .unwrap_err();
    assert!(err.to_string().contains("queues[1]"), "{err}");
}

#[test]
fn unreadable_path_names_the_key() {
    let mut cfg = Config::embedded_default();
    cfg.http.tls_cert = Some("/nonexistent/cert.pem".into());
    cfg.http.tls_key = Some("/nonexistent/key.pem".into());
    let err = cfg.validate().unwrap_err().to_string();
    assert!(
        err.starts_with("http.tls_cert: cannot read /nonexistent/cert.pem"),
        "{err}"
    );
}

#[test]
fn cross_field_rules_name_the_key() {
    let cases = [
        (
            "[registrar]\nmin_expires = 900\nmax_expires = 600\n",
            "registrar.min_expires",
        ),
        (
            "[[agents]]\nid = \"7\"\npassword = \"x\"\nqueues = [\"nope\"]\n",
            "agents[0].queues[0]",
        ),
        ("[[agents]]\nid = \"7\"\n", "agents[0].password"),
        (
            "[[trunks]]\nname = \"t\"\nproxy = \"http://x\"\n",
            "trunks[0].proxy",
        ),
        (
            "[[trunks]]\nname = \"t\"\nproxy = \"sip:x\"\nregister = true\n",
            "trunks[0].username",
        ),
        ("[sip]\nlisten_tls = \"127.0.0.1:5061\"\n", "sip.tls_cert"),
        (
            "[http]\ncors_origins = [\"shop.example.com\"]\n",
            "http.cors_origins[0]",
        ),
        (
            "[sip]\nadvertised_host = \"not an ip\"\n",
            "sip.advertised_host",
        ),
        ("[media]\nport_min = 30000\nport_max = 20000\n", "media.port_min"),
        (
            "[[queues]]\nname = \"q\"\nstrategy = \"random\"\n",
            "queues[0].strategy",
        ),
        (
            "[[queues]]\nname = \"q\"\non_max_wait = \"queue:nowhere\"\n",
            "queues[0].on_max_wait",
        ),
        (
            "[[queues]]\nname = \"q\"\n[[ivr.menus]]\nname = \"main\"\nprompt = \"welcome\"\noptions = { \"1\" = \"queue:nope\" }\n",
            "ivr.menus[0].options.1",
        ),
        (
            "[[queues]]\nname = \"q\"\n[[ivr.menus]]\nname = \"main\"\nprompt = \"welcome\"\noptions = { \"12\" = \"repeat\" }\n",
            "ivr.menus[0].options",
        ),
        (
            "[[queues]]\nname = \"q\"\n[[ivr.menus]]\nname = \"main\"\nprompt = \"no-such-prompt\"\n",
            "ivr.menus[0].prompt",
        ),
        ("[ivr]\nstart = \"lobby\"\n", "ivr.start"),
        (
            "[context]\nheaders = { name = \"Bad Header\" }\n",
            "context.headers.name",
        ),
        ("[ice]\nstun = [\"stun.example.com\"]\n", "ice.stun[0]"),
        (
            "[ice]\nturn = [\"turn:turn.example.com\"]\n",
            "ice.turn_secret",
        ),
        (
            "[ice]\nturn = [\"stun:x\"]\nturn_secret = \"s\"\n",
            "ice.turn[0]",
        ),
        ("[ice]\nturn_ttl_secs = 5\n", "ice.turn_ttl_secs"),
        ("[callback]\nenabled = true\n", "callback.trunk"),
        (
            "[[trunks]]\nname = \"t\"\nproxy = \"sip:x\"\ndial_prefix = \"9;x\"\n",
            "trunks[0].dial_prefix",
        ),
        (
            "[[trunks]]\nname = \"t\"\nproxy = \"sip:x\"\nqueue = \"nope\"\n",
            "trunks[0].queue",
        ),
        (
            "[[queues]]\nname = \"q\"\n[[ivr.menus]]\nname = \"main\"\nprompt = \"welcome\"\n[[trunks]]\nname = \"t\"\nproxy = \"sip:x\"\nmenu = \"main\"\nqueue = \"q\"\n",
            "trunks[0].queue",
        ),
        ("[callback]\nallow = [\"44\"]\n", "callback.allow[0]"),
        ("[callback]\ncountry_code = \"+1\"\n", "callback.country_code"),
        (
            "[[sites]]\nkey = \"a\"\norigins = [\"shop.example.com\"]\n",
            "sites[0].origins[0]",
        ),
        (
            "[[sites]]\nkey = \"a\"\norigins = []\nunsigned = \"refuse\"\n",
            "sites[0].secret",
        ),
        ("[widget]\nresume_grace_secs = 3600\n", "widget.resume_grace_secs"),
        ("[media]\npoor_mos = 5.0\n", "media.poor_mos"),
        (
            "[ivr.language_prompts]\nDeutsch = \"/tmp\"\n",
            "ivr.language_prompts.Deutsch",
        ),
        (
            "[[queues]]\nname = \"q\"\n[[ivr.menus]]\nname = \"main\"\nprompt = \"welcome\"\n\
             options = { \"1\" = \"queue:q\" }\nlabels = { \"2\" = \"Q\" }\n",
            "ivr.menus[0].labels",
        ),
        (
            "[[queues]]\nname = \"q\"\n[[ivr.menus]]\nname = \"main\"\nprompt = \"welcome\"\n\
             options = { \"1\" = \"queue:q\" }\nlabels = { \"1\" = \"\" }\n",
            "ivr.menus[0].labels",
        ),
        (
            "[[queues]]\nname = \"q\"\nrecord = \"always\"\nsiprec = [\"http://srs\"]\n",
            "queues[0].siprec[0]",
        ),
        (
            "[[queues]]\nname = \"q\"\nsiprec = [\"sip:srs@10.0.0.5\"]\n",
            "queues[0].siprec",
        ),
    ];
    for (text, key) in cases {
        let cfg = Config::from_toml(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let err = cfg.validate().expect_err(text).to_string();
        assert!(err.starts_with(&format!("{key}:")), "{text} -> {err}");
    }
}

#[test]
fn syntax_error_reports_the_line() {
    let err = Config::from_toml("[http\nlisten = 1\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn env_overrides_secrets() {
    let mut cfg = Config::from_toml(
        "[[queues]]\nname = \"q\"\n[[agents]]\nid = \"agent.7\"\nqueues = [\"q\"]\n[[trunks]]\nname = \"my-carrier\"\nproxy = \"sip:127.0.0.9\"\nusername = \"u\"\n[[sites]]\nkey = \"acme-web\"\norigins = [\"https://shop.example.com\"]\n",
    )
    .unwrap();
    assert!(
        cfg.validate().is_err(),
        "passwords missing before the environment is applied"
    );
    let vars = [
        ("CLICKTOCALL_AGENT_AGENT_7_PASSWORD", "a-secret"),
        ("CLICKTOCALL_TRUNK_MY_CARRIER_PASSWORD", "t-secret"),
        ("CLICKTOCALL_NONCE_SECRET", "n"),
        ("CLICKTOCALL_TURN_SECRET", "turn-s"),
        ("CLICKTOCALL_SITE_ACME_WEB_SECRET", "site-s"),
        ("PATH", "/bin"),
    ];
    cfg.apply_env(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .unwrap();
    cfg.validate().expect("valid with the environment");
    assert_eq!(cfg.agents[0].password.as_deref(), Some("a-secret"));
    assert_eq!(cfg.trunks[0].password.as_deref(), Some("t-secret"));
    assert_eq!(cfg.registrar.nonce_secret, "n");
    assert_eq!(cfg.ice.turn_secret, "turn-s");
    assert_eq!(cfg.sites[0].secret.as_deref(), Some("site-s"));

    let typo = [(
        "CLICKTOCALL_AGENT_NOBODY_PASSWORD".to_string(),
        "x".to_string(),
    )];
    let err = cfg.apply_env(typo).unwrap_err().to_string();
    assert!(err.contains("CLICKTOCALL_AGENT_NOBODY_PASSWORD"), "{err}");
}

#[test]
fn api_keys_and_flood_limits_are_checked() {
    let key = |name: &str, key: &str, scopes: &str| {
        format!("[[api.keys]]\nname = \"{name}\"\nkey = \"{key}\"\nscopes = [{scopes}]\n")
    };
    let good = key("crm", "0123456789abcdef", "\"records:read\"");
    Config::from_toml(&good).unwrap().validate().unwrap();
    for (text, wanted) in [
        (key("crm", "short", "\"records:read\""), "api.keys[0].key"),
        (
            key("crm", "0123456789abcdef", "\"calls:write\""),
            "api.keys[0].scopes",
        ),
        (key("crm", "0123456789abcdef", ""), "api.keys[0].scopes"),
        (
            key("c r m", "0123456789abcdef", "\"admin\""),
            "api.keys[0].name",
        ),
        (
            format!("{good}{}", key("crm", "fedcba9876543210", "\"admin\"")),
            "api.keys[1].name",
        ),
        (
            format!("[api]\nkey = \"0123456789abcdef\"\n{good}"),
            "api.keys",
        ),
        ("[sip.flood]\nburst = 0\n".to_string(), "sip.flood"),
    ] {
        let err = Config::from_toml(&text).unwrap().validate().unwrap_err();
        assert!(err.to_string().starts_with(wanted), "{text}: {err}");
    }
    // The secret from the environment.
    let mut cfg = Config::from_toml(&key("crm", "", "\"records:read\"")).unwrap();
    cfg.apply_env([(
        "CLICKTOCALL_API_KEY_CRM".to_string(),
        "from-the-environment".to_string(),
    )])
    .unwrap();
    assert_eq!(cfg.api.keys[0].key, "from-the-environment");
    cfg.validate().unwrap();
    let off = Config::from_toml("[sip.flood]\nenabled = false\nburst = 0\n").unwrap();
    off.validate()
        .expect("limits of a disabled defence are not checked");
}
