-- Whether every value of every typed column of this landing cast to its type when it landed. A
-- PostgreSQL source's landing finds it in the scan that reads the batch's newest watermark (one
-- statement casting every typed column, at the cost of the cast), so validate need not scan the
-- batch again for it: rows only leave a batch after it lands. False when not known (other kinds
-- of source, or a value that did not cast): validate then finds which columns cast itself.
ALTER TABLE ops.batch ADD COLUMN typed_columns_cast boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN ops.batch.typed_columns_cast IS
    'True when every value of every typed column cast to its type when this batch landed (found while landing).';
