//! Caffe layer types that netrun knows of but does not run: a clear reason and what
//! to do instead, in place of "unknown layer type".

/// (why it is not supported, what to do instead) for a known but unsupported type.
pub fn reason(type_name: &str) -> Option<(&'static str, &'static str)> {
    Some(match type_name {
        "Python" => (
            "Python layers run user code inside Caffe's embedded Python interpreter, which netrun does not have",
            "express the layer with built-in layers, or compute its output outside the net and feed it \
             through an Input layer (`netrun forward --inputs`, or the library's Net API)",
        ),
        "WindowData" => (
            "WindowData (R-CNN's detection fine-tuning input, deprecated in Caffe) is not supported: its \
             window files only describe crops whose warping and context padding netrun has not implemented",
            "cut the windows into image files beforehand and read them with an ImageData layer and a list file",
        ),
        "Recurrent" => (
            "Recurrent is the abstract base of Caffe's recurrent layers (Caffe cannot build it either)",
            "use type \"LSTM\" or \"RNN\" with the same `recurrent_param`",
        ),
        _ => return None,
    })
}
