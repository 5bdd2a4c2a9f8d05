exports.handler = () => ({ statusCode: 202, body: { ok: true } });
