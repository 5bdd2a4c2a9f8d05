exports.handler = () => undefined;
