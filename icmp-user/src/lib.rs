pub static X: u8 = 0;
