import { render } from 'preact';
import { App } from './app';
import { makeBackend } from './backend';
import { StoreCtx } from './ctx';
import { Store } from './store';
import './style.css';

const store = new Store(makeBackend());
void store.start();
render(
  <StoreCtx.Provider value={store}>
    <App />
  </StoreCtx.Provider>,
  document.getElementById('app')!,
);
