exports.handler = () => 'hello';
