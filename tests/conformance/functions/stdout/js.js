exports.handler = () => {
  console.log('logged');
  return 'ok';
};
