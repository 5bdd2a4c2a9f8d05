exports.handler = () => ({ status: 200, headers: { 'Set-Cookie': ['a=1', 'b=2'] }, body: 'c' });
