<?php
function handler($event)
{
    fwrite(STDERR, "warned\n");
    return "ok";
}
