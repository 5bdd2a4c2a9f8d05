//! lua-cjson behaviour, checked from Lua against the answers lua-cjson 2.1 (OpenResty) gives.

use super::*;

fn lua() -> Lua {
    let lua = Lua::new();
    let raising = module(&lua, false).unwrap();
    let safe = module(&lua, true).unwrap();
    lua.globals().set("cjson", raising).unwrap();
    lua.globals().set("safe", safe).unwrap();
    lua
}

fn eval(lua: &Lua, code: &str) -> String {
    lua.load(code)
        .eval::<String>()
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

#[test]
fn numbers_are_written_as_percent_14g() {
    let cases = [
        (0.1, "0.1"),
        (0.1 + 0.2, "0.3"),
        (1.5, "1.5"),
        (3.0, "3"),
        (-0.0, "-0"),
        (1e15, "1e+15"),
        (123456789012345.0, "1.2345678901234e+14"),
        (12345678901234.0, "12345678901234"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.0 / 3.0, "0.33333333333333"),
        (9.99999999999999e22, "1e+23"),
        (-2.5e-300, "-2.5e-300"),
    ];
    for (f, want) in cases {
        assert_eq!(format_g(f, 14), want, "{f}");
    }
    assert_eq!(format_g(std::f64::consts::PI, 3), "3.14");
    assert_eq!(format_g(1234.5, 3), "1.23e+03");
}

#[test]
fn encode_follows_lua_cjson() {
    let lua = lua();
    let cases = [
        ("{}", "{}"),
        ("{1, 2, 'x'}", r#"[1,2,"x"]"#),
        ("{a = 1, b = {c = true}}", r#"{"a":1,"b":{"c":true}}"#),
        ("{[1] = 'x', [3] = 'y'}", r#"["x",null,"y"]"#),
        ("{[1] = 'a', name = 'b'}", r#"{"1":"a","name":"b"}"#),
        ("{[2.5] = 1}", r#"{"2.5":1}"#),
        ("{1.5, 2^53, 7}", "[1.5,9.007199254741e+15,7]"),
        ("{cjson.null, false}", "[null,false]"),
        ("{list = cjson.empty_array}", r#"{"list":[]}"#),
        ("setmetatable({}, cjson.empty_array_mt)", "[]"),
        ("setmetatable({1, 2, x = 3}, cjson.array_mt)", "[1,2]"),
        (
            "'a/b \"q\" \\\\ \\n\\t\\1 \\127'",
            r#""a\/b \"q\" \\ \n\t\u0001 \u007f""#,
        ),
        ("'caf\\195\\169'", "\"caf\u{e9}\""),
        ("'\\255'", "\"\u{fffd}\""),
    ];
    for (expr, want) in cases {
        let got: mlua::LuaString = lua.load(format!("return cjson.encode({expr})")).eval().unwrap();
        assert_eq!(got.to_string_lossy(), want, "{expr}");
    }
    // Bytes that are not UTF-8 go out as they are.
    let raw: mlua::LuaString = lua.load(r"return cjson.encode('\255')").eval().unwrap();
    assert_eq!(raw.as_bytes().as_ref(), b"\"\xff\"");
}

#[test]
fn encode_errors_raise_or_return_nil_and_message() {
    let lua = lua();
    let cases = [
        (
            "{[1] = 1, [20] = 2}",
            "Cannot serialise table: excessively sparse array",
        ),
        ("{f = print}", "Cannot serialise function: type not supported"),
        (
            "{[true] = 1}",
            "Cannot serialise table: table key must be a number or string",
        ),
        ("0/0", "Cannot serialise number: must not be NaN or Infinity"),
        (
            "(function() local t = {} t.t = t return t end)()",
            "Cannot serialise, excessive nesting (257)",
        ),
    ];
    for (expr, want) in cases {
        let raised = eval(
            &lua,
            &format!("local ok, e = pcall(cjson.encode, {expr}) assert(not ok) return e"),
        );
        assert_eq!(raised, want, "{expr}");
        let safe = eval(
            &lua,
            &format!("local v, e = safe.encode({expr}) assert(v == nil) return e"),
        );
        assert_eq!(safe, want, "{expr}");
    }
}

#[test]
fn settings_change_encoding() {
    let lua = lua();
    let got = eval(
        &lua,
        r#"
        local a = cjson.encode_empty_table_as_object(false)
        local b = cjson.encode_escape_forward_slash(false)
        local c = cjson.encode_sparse_array(true)
        local d = cjson.encode_number_precision(3)
        local e = cjson.encode_invalid_numbers("null")
        return table.concat({tostring(a), tostring(b), tostring(c), tostring(d), e,
          cjson.encode({}), cjson.encode("a/b"), cjson.encode({[1] = 1, [20] = 2}),
          cjson.encode(math.pi), cjson.encode({0/0}),
          safe.encode({}), safe.encode("a/b")}, " ")
        "#,
    );
    assert_eq!(
        got,
        r#"false false true 3 null [] "a/b" {"1":1,"20":2} 3.14 [null] {} "a\/b""#
    );
    assert_eq!(eval(&lua, "return tostring(cjson.encode_keep_buffer(false))"), "false");
    // `new()` gives fresh settings.
    assert_eq!(eval(&lua, "return cjson.new().encode({})"), "{}");
}

#[test]
fn decode_follows_lua_cjson() {
    let lua = lua();
    let got = eval(
        &lua,
        r#"
        local v = cjson.decode([[{"a":[1,null,"x"],"n":null,"f":1.5,"i":42,"big":12345678901234567890,"e":{},"s":"\u00e9\ud83d\ude00\/"}]])
        return table.concat({
          tostring(v.a[1]), math.type(v.a[1]), tostring(v.a[2] == cjson.null), v.a[3], tostring(#v.a),
          tostring(v.n == cjson.null), tostring(v.f), math.type(v.i), math.type(v.big),
          tostring(next(v.e)), v.s,
        }, " ")
        "#,
    );
    assert_eq!(got, "1 integer true x 3 true 1.5 integer float nil é😀/");
    // Round trip: null stays null, nesting stays; an empty array comes back as `{}`.
    let text = r#"{"a":[1,null,{"b":[]}],"c":"x\/y"}"#;
    let back = eval(&lua, &format!("return cjson.encode(cjson.decode([[{text}]]))"));
    assert_eq!(back, r#"{"a":[1,null,{"b":{}}],"c":"x\/y"}"#);
    let with_mt = eval(
        &lua,
        r#"cjson.decode_array_with_array_mt(true) return cjson.encode(cjson.decode('{"b":[]}'))"#,
    );
    assert_eq!(with_mt, r#"{"b":[]}"#);
    assert_eq!(eval(&lua, r#"return cjson.decode('"top"')"#), "top");
}

#[test]
fn decode_errors_raise_or_return_nil_and_message() {
    let lua = lua();
    let cases = [
        (
            "'{bad'",
            "Expected object key string but found invalid token at character 2",
        ),
        ("''", "Expected value but found T_END at character 1"),
        ("'[1,]'", "Expected value but found T_ARR_END at character 4"),
        (
            "'[1 2]'",
            "Expected comma or array end but found invalid token at character 4",
        ),
        ("'{\"a\" 1}'", "Expected colon but found invalid token at character 6"),
        ("'1 x'", "Expected the end but found invalid token at character 3"),
        ("'01'", "Expected value but found invalid token at character 1"),
        (
            "'\"\\\\x\"'",
            "Expected value but found invalid escape code at character 2",
        ),
        (
            "string.rep('[', 257)",
            "Found too many nested data structures (257) at character 257",
        ),
        ("42", "bad argument #1 to 'decode' (string expected, got integer)"),
    ];
    for (expr, want) in cases {
        let raised = eval(
            &lua,
            &format!("local ok, e = pcall(cjson.decode, {expr}) assert(not ok) return e"),
        );
        assert_eq!(raised, want, "{expr}");
        let safe = eval(
            &lua,
            &format!("local v, e = safe.decode({expr}) assert(v == nil) return e"),
        );
        assert_eq!(safe, want, "{expr}");
    }
}
