"""One message shape for missing columns, whatever module raises it."""

import pandas as pd
import pytest

from mlsd._validation import check_columns


def test_names_what_is_missing_what_is_there_and_the_next_step():
    frame = pd.DataFrame(columns=["a", "b"])
    check_columns(frame, ["b", "a"])
    with pytest.raises(ValueError) as info:
        check_columns(frame, ["a", "c", "d", "c"], what="The reference frame", hint="Pass the same columns.")
    assert (
        str(info.value)
        == "The reference frame lacks column(s) ['c', 'd']: it has ['a', 'b']. Pass the same columns."
    )


def test_reads_a_list_of_columns_and_shortens_a_wide_table():
    columns = [f"c{i}" for i in range(30)]
    with pytest.raises(ValueError) as info:
        check_columns(columns, ["c3", "zz"], what="gold.application_features")
    message = str(info.value)
    assert message.startswith("gold.application_features lacks column(s) ['zz']: it has ['c0', 'c1',")
    assert message.endswith("'c19', ...] (30 in all).") and "c20" not in message
