//! Filter (a layer whose output batch size depends on the data) and the recurrent family
//! (RNN, LSTM, LSTMUnit): forward against naive float64 loops written here, the shared
//! gradient checker, nets whose shapes change while they run, and the errors.

#[path = "../common/mod.rs"]
mod common;

mod filter;
