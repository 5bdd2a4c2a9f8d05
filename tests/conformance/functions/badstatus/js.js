exports.handler = () => ({ status: 42 });
